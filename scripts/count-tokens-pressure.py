#!/usr/bin/env python3
"""Tokenizer pressure: four maximal count_tokens bodies (32 MiB of spaces, the worst case
for byte-pair encoding) from one key, then GET / and a small count from another key.

Usage: scripts/count-tokens-pressure.py target/release/ollama-gate
Prints how long each took. Uses ports 18300/18301 and a temporary SQLite file; talks to
loopback only (the upstream is never contacted: count_tokens is answered by the gate)."""
import json, os, subprocess, sys, tempfile, threading, time, urllib.request
binary = sys.argv[1]
d = tempfile.mkdtemp()
env = dict(os.environ, DATABASE_URL=f"sqlite://{d}/g.db", PROXY_HOST="127.0.0.1", PROXY_PORT="18300", ADMIN_PORT="18301",
           ADMIN_PASSWORD="bench-password-123", WORKERS="2", LOG_FILE="", OLLAMA_URL="http://127.0.0.1:9", RUST_LOG="warn",
           TOKENIZER_THREADS="1")
def key(name):
    out = subprocess.run([binary, "keys", "create", "--name", name, "--json"], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["key"]
hog, other = key("hog"), key("other")
gate = subprocess.Popen([binary], env=env, stderr=subprocess.DEVNULL)
for _ in range(100):
    try: urllib.request.urlopen("http://127.0.0.1:18300/", timeout=1); break
    except Exception: time.sleep(0.1)
frame = '{"model":"llama3","messages":[{"role":"user","content":""}]}'
big = ('{"model":"llama3","messages":[{"role":"user","content":"' + " " * (32*1024*1024 - len(frame)) + '"}]}').encode()
def post(k, body, out, i):
    t = time.time()
    req = urllib.request.Request("http://127.0.0.1:18300/v1/messages/count_tokens", data=body, headers={"x-api-key": k, "content-type": "application/json"})
    try: r = urllib.request.urlopen(req, timeout=600); out[i] = (r.status, time.time() - t, r.read()[:60])
    except Exception as e: out[i] = (str(e)[:60], time.time() - t)
res = {}
threads = [threading.Thread(target=post, args=(hog, big, res, i)) for i in range(4)]
t0 = time.time()
for th in threads: th.start()
time.sleep(2)
t = time.time()
try: urllib.request.urlopen("http://127.0.0.1:18300/", timeout=600).read(); print(f"GET / took {time.time()-t:.3f} s")
except Exception as e: print("GET / failed", e)
small = {}
post(other, b'{"model":"llama3","messages":[{"role":"user","content":"two words"}]}', small, 0)
print("other key's small count_tokens:", small[0][0], f"{small[0][1]:.3f} s")
for th in threads: th.join()
for i in range(4): print("maximal", i, res[i][0], f"{res[i][1]:.1f} s", res[i][2] if len(res[i]) > 2 else "")
print(f"all four done after {time.time()-t0:.1f} s")
gate.terminate()
