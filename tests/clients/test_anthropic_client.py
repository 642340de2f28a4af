"""The official `anthropic` Python SDK, unchanged, against the gate.

The gate runs with ANTHROPIC_DEFAULT_MODEL=llama3, so Claude model names work.
"""
import anthropic
import pytest
from conftest import GATE, KEY, charged


def client(key=KEY, **kw):
    return anthropic.Anthropic(base_url=GATE, api_key=key, **kw)


def ask(text="one two three"):
    return [{"role": "user", "content": text}]


def test_create_is_charged_what_the_client_was_told():
    before = charged()
    reply = client().messages.create(model="claude-sonnet-4-5", max_tokens=4, messages=ask())
    assert reply.content[0].text
    assert charged() - before == reply.usage.input_tokens + reply.usage.output_tokens == 7


def test_a_stream_arrives_event_by_event_and_is_charged_from_its_final_usage():
    before = charged()
    with client().messages.stream(model="claude-sonnet-4-5", max_tokens=3, messages=ask("a b")) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    # The mock writes markup as Go does (\u003c escapes); the SDK decodes it.
    assert texts == ["tok ", "<b>tok</b> & ", "tok "]
    assert charged() - before == final.usage.input_tokens + final.usage.output_tokens == 5


def test_tool_use():
    tools = [{"name": "get_weather", "description": "Weather in a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    reply = client().messages.create(model="claude-sonnet-4-5", max_tokens=50, tools=tools, messages=ask("Paris?"))
    assert reply.stop_reason == "tool_use"
    assert reply.content[0].type == "tool_use" and reply.content[0].name == "get_weather"


def test_count_tokens_is_answered():
    counted = client().messages.count_tokens(model="claude-sonnet-4-5", messages=ask("one two three four"))
    assert counted.input_tokens == 4


def test_the_auth_token_form_claude_code_uses_works():
    bearer = anthropic.Anthropic(base_url=GATE, auth_token=KEY)
    assert bearer.messages.create(model="claude-sonnet-4-5", max_tokens=1, messages=ask()).content


def test_error_classes():
    with pytest.raises(anthropic.AuthenticationError):
        client("sk-og-wrong", max_retries=0).messages.create(model="llama3", max_tokens=1, messages=ask())


def test_an_exhausted_quota_raises_rate_limit_error(fresh_limited_key):
    limited = client(fresh_limited_key, max_retries=0)
    limited.messages.create(model="llama3", max_tokens=1, messages=ask())
    with pytest.raises(anthropic.RateLimitError) as err:
        limited.messages.create(model="llama3", max_tokens=1, messages=ask())
    assert int(err.value.response.headers["retry-after"]) > 0
