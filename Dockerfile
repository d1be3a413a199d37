# syntax=docker/dockerfile:1
# The image manifests/base runs (name and tag pinned in manifests/base/kustomization.yaml):
#   docker build -t ghcr.io/spillway-dev/spillway:$(node -p 'require("./package.json").version') .
# Build stage: compile TypeScript to dist/ with the full dev toolchain.
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: only the compiled CLI, production dependencies and the manifests `spillway join`
# applies to remote clusters (manifests/remote), as an unprivileged user.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY manifests ./manifests
USER node
# The kubelet API (logs, exec, attach, port-forward, stats) the host API server calls; the burst
# webhook; Spillway's metrics with /healthz and /readyz.
EXPOSE 10250 9443 9095
# A small young generation keeps streams' dead buffers from piling up (src/kubelet/runtime-flags.ts).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--optimize-for-size", "dist/main.js"]
CMD ["run", "--config", "/etc/spillway/config.yaml"]
