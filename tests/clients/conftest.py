"""Shared settings for the client suites: the gate and keys come from tests/clients.rs."""
import os
import time

import httpx
import pytest

GATE = os.environ["OLLAMA_GATE_URL"]
KEY = os.environ["OLLAMA_GATE_KEY"]


def charged(key=KEY):
    """Tokens charged to the key so far, once settlement has caught up."""
    time.sleep(0.2)
    usage = httpx.get(f"{GATE}/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()
    return usage["usage"]["total"]["tokens"]


@pytest.fixture
def fresh_limited_key():
    """A key with one request a day, made through the admin API."""
    admin = os.environ["OLLAMA_GATE_ADMIN_URL"]
    password = os.environ["OLLAMA_GATE_ADMIN_PASSWORD"]
    reply = httpx.post(f"{admin}/api/api-keys", headers={"Authorization": f"Bearer {password}"},
                       json={"name": "limited", "limits": {"daily_requests": 1}})
    return reply.json()["key"]
