# hostpath-provisioner container image: `make image` (Docker when a daemon answers, else buildah; see
# e2e/image/build.sh). Three stages: compile with the full toolchain, install production dependencies alone, run on
# distroless Node.js 24 (no shell, no package manager) as the numeric non-root user 65532.
# BUILD_BASE and RUN_BASE name the base images; the defaults are the public ones (where no registry is reachable,
# e2e/image/bases.sh assembles local stand-ins and `make image` passes them in).
# The npm steps read an optional build secret `ca` (a CA bundle, for npm behind TLS inspection); it is in no layer.
ARG BUILD_BASE=node:24-slim
ARG RUN_BASE=gcr.io/distroless/nodejs24-debian12:nonroot

# 1. Compile TypeScript to dist/ (tsconfig.build.json also compiles e2e/node-agent, which is not shipped).
FROM ${BUILD_BASE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN --mount=type=secret,id=ca NODE_EXTRA_CA_CERTS=/run/secrets/ca npm ci --no-audit --no-fund
COPY src ./src
COPY controllers ./controllers
COPY e2e/node-agent ./e2e/node-agent
RUN npx tsc -p tsconfig.build.json

# 2. Production dependencies only, from the lock file; no install scripts run.
FROM ${BUILD_BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca NODE_EXTRA_CA_CERTS=/run/secrets/ca npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 3. Run time.
FROM ${RUN_BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="hostpath-provisioner" \
      org.opencontainers.image.description="Kubernetes hostPath provisioner whose helper pods tolerate the target node's taints; drop-in for the MicroK8s hostpath-storage addon" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/controllers ./dist/controllers
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/nodejs/bin/node", "dist/src/cli/main.js"]
CMD ["run"]
