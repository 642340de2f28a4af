//! The text a request puts before the model, for token estimates.
//!
//! Counted: system prompts (strings or Anthropic blocks), `instructions`,
//! Ollama's `template` (its text is rendered around the prompt), `prompt`,
//! `suffix`, `input` (strings, or Responses items), every message's content
//! parts, thinking and reasoning, tool calls (name and arguments), tool
//! results (OpenAI `role: tool` messages, Anthropic `tool_result` blocks with
//! their nested content, Responses `function_call_output`), and the tool
//! definitions as the JSON that was sent. Not counted: images, files, audio.
//!
//! The walk is linear in the body, whose depth `parse_strict` bounds, and the
//! text it gathers is never much larger than the body itself.

use serde_json::{Map, Value};

pub fn text(body: &Value) -> String {
    let mut out = Text::default();
    let Value::Object(body) = body else { return out.0 };
    for name in ["system", "instructions", "template", "prompt", "suffix", "input", "messages"] {
        if let Some(v) = body.get(name) {
            out.content(v);
        }
    }
    if let Some(tools) = body.get("tools").filter(|t| !t.is_null()) {
        out.json(tools);
    }
    out.0
}

#[derive(Default)]
struct Text(String);

impl Text {
    fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        self.0.push_str(s);
    }

    /// Structured values (tool arguments, tool definitions) as their JSON.
    fn json(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.push(s),
            v => self.push(&v.to_string()),
        }
    }

    /// A string, a list of parts or messages, or one part or message.
    fn content(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.push(s),
            Value::Array(items) => items.iter().for_each(|i| self.content(i)),
            Value::Object(o) => self.part(o),
            _ => {}
        }
    }

    /// A message, a content part or block, or a Responses input item.
    fn part(&mut self, o: &Map<String, Value>) {
        let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
        for name in ["text", "thinking", "reasoning", "encrypted_content"] {
            if let Some(Value::String(s)) = o.get(name) {
                self.push(s);
            }
        }
        match kind {
            // Anthropic tool calls, and Responses function calls.
            "tool_use" | "server_tool_use" | "function_call" => {
                if let Some(Value::String(name)) = o.get("name") {
                    self.push(name);
                }
                for name in ["input", "arguments"] {
                    if let Some(v) = o.get(name).filter(|v| !v.is_null()) {
                        self.json(v);
                    }
                }
            }
            "image" | "image_url" | "input_image" | "input_file" | "input_audio" => return,
            _ => {}
        }
        // Message content, tool results' nested content, function call outputs,
        // reasoning summaries.
        for name in ["content", "output", "summary"] {
            if let Some(v) = o.get(name) {
                self.content(v);
            }
        }
        // Native and OpenAI tool calls on a message.
        if let Some(Value::Array(calls)) = o.get("tool_calls") {
            for call in calls {
                let function = call.get("function").unwrap_or(call);
                if let Some(Value::String(name)) = function.get("name") {
                    self.push(name);
                }
                if let Some(arguments) = function.get("arguments").filter(|v| !v.is_null()) {
                    self.json(arguments);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_prompt_and_system_are_gathered() {
        let v = json!({"system": "be brief", "messages": [{"role": "user", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "world"}]}]});
        assert_eq!(text(&v), "be brief\nhello\nworld");
        let v = json!({"model": "m", "prompt": "fill", "suffix": "end", "template": "{{ .Prompt }}"});
        assert_eq!(text(&v), "{{ .Prompt }}\nfill\nend");
    }

    #[test]
    fn anthropic_tools_tool_uses_and_nested_tool_results_are_counted() {
        let v = json!({
            "system": [{"type": "text", "text": "sys block"}],
            "tools": [{"name": "lookup", "description": "finds things", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "pondering"},
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "cats"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "nested result"}]},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "plain result"},
                    {"type": "image", "source": {"type": "base64", "data": "AAAA"}}]}]
        });
        let t = text(&v);
        for part in [
            "sys block",
            "pondering",
            "lookup",
            "{\"q\":\"cats\"}",
            "nested result",
            "plain result",
            "finds things",
            "input_schema",
        ] {
            assert!(t.contains(part), "{part} missing from {t:?}");
        }
        assert!(!t.contains("AAAA"), "images are not text");
    }

    #[test]
    fn openai_and_native_tool_calls_and_results_are_counted() {
        let v = json!({"messages": [
            {"role": "assistant", "content": null, "reasoning": "thinking aloud",
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "rainy"},
            {"role": "assistant", "thinking": "native thought",
             "tool_calls": [{"function": {"name": "clock", "arguments": {"tz": "UTC"}}}]},
            {"role": "user", "content": "x", "images": ["QUFBQQ=="]}]});
        let t = text(&v);
        for part in
            ["thinking aloud", "weather", "{\"city\":\"Oslo\"}", "rainy", "native thought", "clock", "UTC"]
        {
            assert!(t.contains(part), "{part} missing from {t:?}");
        }
        assert!(!t.contains("QUFBQQ"));
    }

    #[test]
    fn responses_items_and_instructions_are_counted() {
        let v = json!({"instructions": "be terse", "input": [
            {"role": "user", "content": "plain"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "parts"},
                {"type": "input_image", "image_url": "data:image/png;base64,BBBB"}]},
            {"type": "function_call", "call_id": "f1", "name": "search", "arguments": "{\"q\":1}"},
            {"type": "function_call_output", "call_id": "f1", "output": "found it"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "summary"}], "encrypted_content": "hidden"}],
            "tools": [{"type": "function", "name": "search", "parameters": {}}]});
        let t = text(&v);
        for part in
            ["be terse", "plain", "parts", "search", "{\"q\":1}", "found it", "summary", "hidden", "function"]
        {
            assert!(t.contains(part), "{part} missing from {t:?}");
        }
        assert!(!t.contains("BBBB"));
    }
}
