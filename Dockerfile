# Multi-stage image: build with the full toolchain, run on a slim Node 24 with production dependencies only.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY controllers ./controllers
COPY e2e/node-agent ./e2e/node-agent
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM gcr.io/distroless/nodejs24-debian12:nonroot
LABEL org.opencontainers.image.title="hostpath-provisioner" \
      org.opencontainers.image.description="Kubernetes hostPath provisioner whose helper pods tolerate the target node's taints" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/controllers ./dist/controllers
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/nodejs/bin/node", "dist/src/cli/main.js"]
CMD ["run"]
