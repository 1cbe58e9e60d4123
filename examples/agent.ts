/**
 * An agent loop: a model (a deterministic fake here, so this runs offline) is called through
 * `trace`, so a replay reuses its answers; the tool calls it asks for run as child tasks in
 * parallel; a durable `sleep` between rounds keeps under a rate limit without holding a worker.
 *
 *   npx aloft run examples/agent.ts agent '"What is 6 * 7, and how far is it to the moon?"'
 */
import { TaskEnvironment, sleep, trace } from "aloft";

const env = new TaskEnvironment({ name: "agent" });

type ToolCall = { tool: "calculator"; expression: string } | { tool: "lookup"; topic: string };
type Reply = { kind: "tools"; calls: ToolCall[] } | { kind: "answer"; text: string };
interface Turn {
  role: "user" | "tool";
  content: string;
}

/** The fake model: asks for tools on the first round, answers once it has their results. */
const callModel = trace(async function callModel(transcript: Turn[]): Promise<Reply> {
  const results = transcript.filter((t) => t.role === "tool");
  if (results.length === 0)
    return {
      kind: "tools",
      calls: [
        { tool: "calculator", expression: "6 * 7" },
        { tool: "lookup", topic: "moon distance" },
      ],
    };
  return { kind: "answer", text: `From the tools: ${results.map((t) => t.content).join("; ")}.` };
});

const FACTS: Record<string, string> = { "moon distance": "about 384,400 km" };

export const calculator = env.task(async function calculator(expression: string) {
  const m = /^(-?\d+(?:\.\d+)?)\s*([-+*/])\s*(-?\d+(?:\.\d+)?)$/.exec(expression.trim());
  if (!m) throw new Error(`calculator: cannot read ${JSON.stringify(expression)}`);
  const [a, op, b] = [Number(m[1]), m[2], Number(m[3])];
  const value = op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : a / b;
  return `${expression} = ${value}`;
});

export const lookup = env.task(async function lookup(topic: string) {
  return `${topic}: ${FACTS[topic] ?? "unknown"}`;
});

function runTool(call: ToolCall): Promise<string> {
  return call.tool === "calculator" ? calculator(call.expression) : lookup(call.topic);
}

export const agent = env.task(async function agent(question: string, maxRounds = 5) {
  const transcript: Turn[] = [{ role: "user", content: question }];
  for (let round = 0; round < maxRounds; round++) {
    if (round > 0) await sleep("1s"); // the model's rate limit, durably: no worker held meanwhile
    const reply = await callModel(transcript);
    if (reply.kind === "answer") return { answer: reply.text, rounds: round + 1 };
    const results = await Promise.all(reply.calls.map(runTool));
    for (const content of results) transcript.push({ role: "tool", content });
  }
  throw new Error(`no answer after ${maxRounds} rounds`);
});
