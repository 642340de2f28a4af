"""The Connect page's snippets, run exactly as an admin would paste them.

They come from `/api/proxy-info`, the same text the console shows. Each gets
only what the page tells the reader to have: `OLLAMA_GATE_KEY` in the
environment.
"""
import os
import subprocess
import sys

import httpx
import pytest
from conftest import KEY

ADMIN = os.environ["OLLAMA_GATE_ADMIN_URL"]
PASSWORD = os.environ["OLLAMA_GATE_ADMIN_PASSWORD"]


def proxy_info():
    reply = httpx.get(f"{ADMIN}/api/proxy-info", headers={"Authorization": f"Bearer {PASSWORD}"})
    reply.raise_for_status()
    return reply.json()


def snippets():
    return proxy_info()["snippets"]


def run(args, **kw):
    # A clean environment: nothing from this test run leaks in but the key
    # (and PATH, to find the interpreter and curl).
    env = {"PATH": os.environ["PATH"], "OLLAMA_GATE_KEY": KEY}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, **kw)
    assert done.returncode == 0, f"{args!r} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("name", ["openai_python", "anthropic_python", "ollama_python", "langchain"])
def test_each_python_snippet_runs_as_pasted_and_prints_the_answer(name):
    out = run([sys.executable, "-c", snippets()[name]])
    assert out.strip(), f"{name} printed nothing"


def test_the_curl_snippet_runs_in_a_shell():
    out = run(["bash", "-c", snippets()["curl"]])
    assert '"done":true' in out.replace(" ", ""), out


def test_the_environment_lines_point_the_sdks_at_the_gate_without_arguments():
    info = proxy_info()
    lines = info["snippets"]["environment"]
    assert info["openai_base_url"] in lines
    program = (
        "import anthropic, openai\n"
        "m = openai.OpenAI().models.list().data[0].id\n"
        "print(openai.OpenAI().chat.completions.create(model=m, messages=[{'role': 'user', 'content': 'hi'}])"
        ".choices[0].message.content)\n"
        "print(anthropic.Anthropic().messages.create(model=m, max_tokens=8, messages=[{'role': 'user', 'content': 'hi'}])"
        ".content[0].text)\n"
    )
    out = run(["bash", "-c", lines + f"\nexec {sys.executable} -c \"$0\"", program])
    assert len(out.strip().splitlines()) == 2, out


def test_the_claude_code_line_sets_what_claude_code_reads():
    line = snippets()["claude_code"]
    assert line.endswith(" claude")
    # Claude Code itself is not installed here: the same assignments, then the
    # Anthropic SDK, which reads the same variables.
    program = (
        "import os, anthropic\n"
        "reply = anthropic.Anthropic().messages.create(model=os.environ['ANTHROPIC_MODEL'], max_tokens=8,"
        " messages=[{'role': 'user', 'content': 'hi'}])\n"
        "print(reply.content[0].text)\n"
    )
    out = run(["bash", "-c", line.removesuffix(" claude") + f" {sys.executable} -c \"$0\"", program])
    assert out.strip()
