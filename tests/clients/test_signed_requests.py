"""Requests signed as the `ollama` command line signs them with OLLAMA_AUTH=1.

The signing follows Ollama's api/client.go (`do`, `stream`) and
auth/auth.go (`Sign`): the challenge `METHOD,path?ts=<unix seconds>`, the URL
with `?ts=`, and `Authorization: <pubkey>:<signature>`, where the pubkey is
the base64 field of the key's authorized_keys line and the signature the
standard base64 of the raw ed25519 signature. Made here with `cryptography`,
independently of the gate's code.
"""
import base64
import os
import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from conftest import GATE

ADMIN = os.environ["OLLAMA_GATE_ADMIN_URL"]
PASSWORD = os.environ["OLLAMA_GATE_ADMIN_PASSWORD"]


def admin(method, path, body=None):
    return httpx.request(method, f"{ADMIN}/api{path}", json=body,
                         headers={"Authorization": f"Bearer {PASSWORD}"})


def pub_line(private):
    return private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def signed(private, method, path, ts=None, body=None):
    """One request as api/client.go makes it."""
    ts = str(int(time.time())) if ts is None else ts
    challenge = f"{method},{path}?ts={ts}".encode()
    pubkey = pub_line(private).split(" ")[1]
    token = f"{pubkey}:{base64.b64encode(private.sign(challenge)).decode()}"
    return httpx.request(method, f"{GATE}{path}", params={"ts": ts}, json=body,
                         headers={"Authorization": token}, timeout=30)


def registered_key(name):
    private = Ed25519PrivateKey.generate()
    key = admin("POST", "/api-keys", {"name": name}).json()
    reply = admin("POST", f"/api-keys/{key['id']}/public-keys", {"public_key": pub_line(private) + " py@test"})
    assert reply.status_code == 201, reply.text
    return private, key


def test_a_signed_generate_is_charged_to_its_key():
    private, key = registered_key("signed")
    reply = signed(private, "POST", "/api/generate", body={"model": "llama3", "prompt": "hi", "stream": False})
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"]
    time.sleep(0.3)
    shown = admin("GET", f"/api-keys/{key['id']}").json()
    assert shown["usage"]["total"]["requests"] == 1
    assert shown["usage"]["total"]["tokens"] > 0


def test_a_replay_a_stale_ts_and_an_unregistered_key_are_refused():
    private, _ = registered_key("refusals")
    ts = str(int(time.time()))
    body = {"model": "llama3", "prompt": "hi", "stream": False}
    assert signed(private, "POST", "/api/generate", ts=ts, body=body).status_code == 200
    replay = signed(private, "POST", "/api/generate", ts=ts, body=body)
    assert replay.status_code == 401 and "already used" in replay.json()["error"]
    stale = signed(private, "POST", "/api/generate", ts=str(int(time.time()) - 3600), body=body)
    assert stale.status_code == 401
    stranger = signed(Ed25519PrivateKey.generate(), "GET", "/api/tags")
    assert stranger.status_code == 401 and "not registered" in stranger.json()["error"]
