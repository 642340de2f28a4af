"""The official `openai` Python SDK, unchanged, against the gate."""
import openai
import pytest
from conftest import GATE, KEY, charged


def client(key=KEY, **kw):
    return openai.OpenAI(base_url=f"{GATE}/v1", api_key=key, **kw)


def ask(text="one two three"):
    return [{"role": "user", "content": text}]


def test_chat_is_charged_what_the_client_was_told():
    before = charged()
    reply = client().chat.completions.create(model="llama3", messages=ask(), max_tokens=4)
    assert reply.choices[0].message.content
    assert charged() - before == reply.usage.total_tokens == 7


def test_a_stream_without_include_usage_shows_no_usage_yet_is_charged_exactly():
    before = charged()
    chunks = list(client().chat.completions.create(model="llama3", messages=ask(), max_tokens=4, stream=True))
    assert all(c.usage is None for c in chunks)
    # The mock writes markup as Go does (\u003c escapes); the SDK decodes it.
    assert [c.choices[0].delta.content for c in chunks] == ["tok ", "<b>tok</b> & ", "tok ", "tok "]
    assert charged() - before == 3 + 4


def test_a_stream_with_include_usage_shows_it_exactly_once():
    before = charged()
    chunks = list(client().chat.completions.create(model="llama3", messages=ask(), max_tokens=2, stream=True,
                                                   stream_options={"include_usage": True}))
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1
    assert charged() - before == usages[0].total_tokens == 5


def test_tool_calls_come_back():
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    reply = client().chat.completions.create(model="llama3", messages=ask("weather in Paris?"), tools=tools)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert reply.choices[0].finish_reason == "tool_calls"


def test_embeddings_models_and_responses():
    before = charged()
    embedding = client().embeddings.create(model="llama3", input="one two")
    assert embedding.data[0].embedding
    assert charged() - before == embedding.usage.prompt_tokens == 2
    ids = [m.id for m in client().models.list()]
    assert "llama3:latest" in ids
    assert client().models.retrieve("llama3:latest").id == "llama3:latest"
    before = charged()
    response = client().responses.create(model="llama3", input="a b c", max_output_tokens=2)
    assert response.output_text
    assert charged() - before == response.usage.total_tokens == 5


def test_a_bad_key_raises_authentication_error():
    with pytest.raises(openai.AuthenticationError):
        client("sk-og-wrong", max_retries=0).chat.completions.create(model="llama3", messages=ask())


def test_an_exhausted_quota_raises_rate_limit_error_with_retry_after(fresh_limited_key):
    limited = client(fresh_limited_key, max_retries=0)
    limited.chat.completions.create(model="llama3", messages=ask())
    with pytest.raises(openai.RateLimitError) as err:
        limited.chat.completions.create(model="llama3", messages=ask())
    assert int(err.value.response.headers["retry-after"]) > 0
    assert err.value.code == "insufficient_quota"
