/**
 * An agent loop: a model (a deterministic fake here, so this runs offline) is called through
 * `trace`, so a replay reuses its answers; the tool calls it asks for run as child tasks in
 * parallel; a durable `sleep` between rounds keeps under a rate limit without holding a worker; a
 * signal lets someone steer it while it runs (a note they send joins the transcript).
 *
 *   npx aloft run examples/agent.ts agent '"What is 6 * 7, and how far is it to the moon?"'
 *   npx aloft signal <run> steer '"answer in one line"'      # from another shell, while it runs
 */
import { TaskEnvironment, sleep, trace, waitForSignal } from "aloft";

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
  const notes = transcript.slice(1).filter((t) => t.role === "user");
  const noted = notes.length ? ` (noted: ${notes.map((t) => t.content).join("; ")})` : "";
  return { kind: "answer", text: `From the tools: ${results.map((t) => t.content).join("; ")}.${noted}` };
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
  // A note someone sends (`aloft signal <run> steer '"..."'`) is read at the next pause.
  let steer = waitForSignal<string>("steer");
  for (let round = 0; round < maxRounds; round++) {
    if (round > 0) {
      // The model's rate limit, durably (no worker held meanwhile); a note ends the pause early.
      const note = await Promise.race([sleep("1s").then(() => undefined), steer]);
      if (note !== undefined) {
        transcript.push({ role: "user", content: note });
        steer = waitForSignal<string>("steer");
      }
    }
    const reply = await callModel(transcript);
    if (reply.kind === "answer") return { answer: reply.text, rounds: round + 1 };
    const results = await Promise.all(reply.calls.map(runTool));
    for (const content of results) transcript.push({ role: "tool", content });
  }
  throw new Error(`no answer after ${maxRounds} rounds`);
});
