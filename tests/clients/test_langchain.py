"""LangChain's Ollama integration, with the key passed as a header."""
from conftest import GATE, KEY, charged
from langchain_ollama import ChatOllama, OllamaEmbeddings

HEADERS = {"Authorization": f"Bearer {KEY}"}


def test_chat_invoke_and_stream():
    llm = ChatOllama(model="llama3", base_url=GATE, num_predict=3, client_kwargs={"headers": HEADERS})
    before = charged()
    reply = llm.invoke("one two three")
    assert reply.content == "tok <b>tok</b> & tok "
    meta = reply.usage_metadata
    assert charged() - before == meta["total_tokens"] == 6
    assert "".join(chunk.content for chunk in llm.stream("hi")) == "tok <b>tok</b> & tok "


def test_embeddings():
    embeddings = OllamaEmbeddings(model="llama3", base_url=GATE, client_kwargs={"headers": HEADERS})
    assert embeddings.embed_query("hello")
