/**
 * Anthropic's list prices, USD per million tokens, for estimating the cost of a session that
 * ended without Claude Code's own result (stopped by the time budget or a cancel). Prompt-cache
 * writes cost 1.25 × input, cache reads 0.1 × input. A model not listed here gets no estimate.
 */
const PRICES: readonly { model: RegExp; input: number; output: number }[] = [
  { model: /^claude-opus-4-[56]/, input: 5, output: 25 },
  { model: /^claude-(opus-4|3-opus)/, input: 15, output: 75 },
  { model: /^claude-(sonnet-4|3-7-sonnet|3-5-sonnet)/, input: 3, output: 15 },
  { model: /^claude-haiku-4/, input: 1, output: 5 },
  { model: /^claude-3-5-haiku/, input: 0.8, output: 4 },
];

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
}

/** The list-price cost of `usage` on `model`, or undefined for an unknown model. */
export function estimateCostUsd(model: string | null, usage: TokenUsage): number | undefined {
  const price = model ? PRICES.find((p) => p.model.test(model)) : undefined;
  if (!price) return undefined;
  const input = usage.inputTokens + 1.25 * usage.cacheWriteTokens + 0.1 * usage.cacheReadTokens;
  const usd = (input * price.input + usage.outputTokens * price.output) / 1_000_000;
  return Math.round(usd * 1_000_000) / 1_000_000;
}
