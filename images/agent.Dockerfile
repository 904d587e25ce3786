# syntax=docker/dockerfile:1
# The agent image: the orchestrator's agent runner plus Claude Code, git and ssh. Its entrypoint
# is `orchestrator-agent-runner`, which the controller's Jobs start (config agent.command).
# Build from the repository root:  docker build -f images/agent.Dockerfile -t orchestrator-agent:dev .
# Not built in CI; see docs/agent-runner.md.

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Claude Code at exactly the version package.json pins (the version the e2e tests run).
COPY package.json /tmp/orchestrator-package.json
RUN CLAUDE_CODE_VERSION="$(node -p "require('/tmp/orchestrator-package.json').devDependencies['@anthropic-ai/claude-code']")" \
 && npm install -g --no-audit --no-fund "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" \
 && npm cache clean --force \
 && rm /tmp/orchestrator-package.json \
 && claude --version

WORKDIR /opt/orchestrator
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
RUN chmod 0755 dist/cmd/runner.js \
 && ln -s /opt/orchestrator/dist/cmd/runner.js /usr/local/bin/orchestrator-agent-runner

ENV NODE_ENV=production \
    DISABLE_AUTOUPDATER=1 \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
# The base image's "node" user (uid/gid 1000). Claude Code refuses to skip permission prompts as
# root, and the runner needs no privileges: the Job's fsGroup makes /workspace writable.
USER 1000:1000
WORKDIR /workspace
ENTRYPOINT ["orchestrator-agent-runner"]
