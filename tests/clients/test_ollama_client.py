"""The official `ollama` Python client, unchanged, against the gate.

Run by tests/clients.rs, which starts a mock Ollama and the real gate binary
and passes their addresses in the environment.
"""
import ollama
import pytest
from conftest import GATE, KEY, charged


def client(key=KEY):
    return ollama.Client(host=GATE, headers={"Authorization": f"Bearer {key}"})


def test_chat_is_charged_exactly_what_the_client_was_told():
    before = charged()
    reply = client().chat(model="llama3", messages=[{"role": "user", "content": "say hello world"}])
    assert reply.message.content
    assert reply.done
    assert charged() - before == reply.prompt_eval_count + reply.eval_count


def test_streamed_chat_arrives_chunk_by_chunk_and_is_charged_from_the_final_chunk():
    before = charged()
    parts = list(client().chat(model="llama3", messages=[{"role": "user", "content": "one two"}],
                               stream=True, options={"num_predict": 5}))
    assert len(parts) == 6
    assert parts[-1].done and not parts[0].done
    assert charged() - before == parts[-1].prompt_eval_count + parts[-1].eval_count


def test_generate_streamed_and_not():
    whole = client().generate(model="llama3", prompt="a b c")
    assert whole.done and whole.eval_count == 3
    chunks = list(client().generate(model="llama3", prompt="a b c", stream=True))
    assert chunks[-1].done


def test_embed_list_show_ps_and_version():
    assert client().embed(model="llama3", input="hello").embeddings
    names = [m.model for m in client().list().models]
    assert "llama3:latest" in names
    assert client().show("llama3").modelfile
    assert client().ps().models is not None


def test_a_bad_key_raises_a_401_response_error():
    with pytest.raises(ollama.ResponseError) as err:
        client("sk-og-not-a-real-key").chat(model="llama3", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401


def test_an_exhausted_quota_raises_a_429_response_error(fresh_limited_key):
    limited = client(fresh_limited_key)
    limited.generate(model="llama3", prompt="first")
    with pytest.raises(ollama.ResponseError) as err:
        limited.generate(model="llama3", prompt="second")
    assert err.value.status_code == 429
    assert "daily_requests" in err.value.error


def test_model_management_is_refused_for_an_inference_key():
    with pytest.raises(ollama.ResponseError) as err:
        client().pull("llama3")
    assert err.value.status_code == 403
    with pytest.raises(ollama.ResponseError) as err:
        client().delete("llama3")
    assert err.value.status_code == 403
