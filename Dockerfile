# hostpath-provisioner container image: `make image` (docker build -t hostpath-provisioner:<version> .).
# Three stages: compile with the full toolchain, install production dependencies alone, run on distroless
# Node.js 24 (no shell, no package manager) as the numeric non-root user 65532.

# 1. Compile TypeScript to dist/ (tsconfig.build.json also compiles e2e/node-agent, which is not shipped).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY controllers ./controllers
COPY e2e/node-agent ./e2e/node-agent
RUN npx tsc -p tsconfig.build.json

# 2. Production dependencies only, from the lock file; no install scripts run.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 3. Run time.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
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
