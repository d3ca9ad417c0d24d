// The official `openai` Node client, unmodified, against the simulator.
// Usage: node client_check.mjs BASE_URL ACCESS_TOKEN
// Prints one JSON object: what each call returned, for test_openai_node.py to check.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });
const model = "jan-v1-4b";
const searchTool = {
  type: "function",
  function: {
    name: "google_search",
    parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] },
  },
};
const out = {};

const chat = await client.chat.completions.create({
  model, messages: [{ role: "user", content: "hello" }],
});
out.chat = { content: chat.choices[0].message.content, usage: chat.usage };

const stream = await client.chat.completions.create({
  model, stream: true, stream_options: { include_usage: true },
  messages: [{ role: "user", content: "hello" }],
});
const pieces = [];
let streamUsage = null;
for await (const chunk of stream) {
  if (chunk.choices.length && chunk.choices[0].delta.content) pieces.push(chunk.choices[0].delta.content);
  if (chunk.usage) streamUsage = chunk.usage;
}
out.stream = { text: pieces.join(""), deltas: pieces.length, usage: streamUsage };

const tool = await client.chat.completions.create({
  model, tools: [searchTool], messages: [{ role: "user", content: "search the news" }],
});
const call = tool.choices[0].message.tool_calls[0];
out.tools = { finish: tool.choices[0].finish_reason, name: call.function.name,
              arguments: call.function.arguments };

const resp = await client.responses.create({ model, input: "Describe a queue" });
out.responses = { status: resp.status, text: resp.output_text, usage: resp.usage };

const events = [];
const deltas = [];
const rstream = client.responses.stream({ model, input: "Tell me a fact" });
for await (const event of rstream) {
  events.push(event.type);
  if (event.type === "response.output_text.delta") deltas.push(event.delta);
}
const final = await rstream.finalResponse();
out.responses_stream = { events, text: deltas.join(""), final_text: final.output_text,
                         final_status: final.status, usage: final.usage };

const retrieved = await client.models.retrieve(model);
out.model = { id: retrieved.id, object: retrieved.object };

console.log(JSON.stringify(out));
