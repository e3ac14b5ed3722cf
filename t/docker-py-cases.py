#!/usr/bin/env python3
"""docker-py (the `docker` package from PyPI) against one Docker API endpoint.

    docker-py-cases.py BASE_URL IMAGE [CASE...]

BASE_URL: unix:///path/docker.sock or tcp://127.0.0.1:PORT. IMAGE: a busybox image the
daemon has. Prints one line per case, `name<TAB>result`, where the result is the same on
every correct path (no ids, no timestamps): driven by t/tests/docker_py.rs, which
compares the lines of each proxy with those of the direct socket. A case that raises
prints `error: <exception class>: <message>`.

The cases follow docker-py's own integration tests (tests/integration/api_build_test.py,
api_exec_test.py, api_container_test.py): builds whose context archive the daemon does
not read to its end, attach, exec with and without stdin, logs with follow, events,
wait.
"""

import io
import json
import os
import socket
import struct
import sys
import tarfile
import tempfile
import time
import uuid

import docker

BASE_URL, IMAGE = sys.argv[1], sys.argv[2]
ONLY = set(sys.argv[3:])
RUN = uuid.uuid4().hex[:12]
LABEL = {"nds-test": f"docker-py-{RUN}"}
client = docker.APIClient(base_url=BASE_URL, version="1.41", timeout=60)
created = []
images = []


def container(cmd, **kw):
    c = client.create_container(IMAGE, cmd, labels=LABEL, network_disabled=True, **kw)
    created.append(c["Id"])
    return c["Id"]


def build_result(stream):
    """The build's messages, with image ids cut: 'Successfully built' or the error."""
    out = []
    for chunk in stream:
        if "error" in chunk:
            out.append("error: " + chunk["error"].strip())
        elif "stream" in chunk and chunk["stream"].startswith("Successfully built"):
            out.append("built")
        elif "aux" in chunk:
            pass
    return ", ".join(out) or "no result"


def case_build_buildargs():
    script = io.BytesIO(b"FROM scratch\nARG test\nUSER $test\n")
    tag = f"nds-docker-py-buildargs-{RUN}"
    res = build_result(client.build(fileobj=script, tag=tag, buildargs={"test": "OK"}, decode=True))
    images.append(tag)
    return f"{res}; user={client.inspect_image(tag)['Config']['User']}"


def case_build_context():
    # A context directory with a file: docker-py tars it (with tarfile's padding).
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY data.bin /data.bin\nLABEL built=by-docker-py\n")
        with open(os.path.join(d, "data.bin"), "wb") as f:
            f.write(os.urandom(300 * 1024))
        tag = f"nds-docker-py-context-{RUN}"
        res = build_result(client.build(path=d, tag=tag, decode=True, rm=True))
        images.append(tag)
        return f"{res}; label={client.inspect_image(tag)['Config']['Labels']}"


def case_build_custom_context():
    # A hand-made archive, as docker-py's test_build_with_custom_context does.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"FROM scratch\nENV X=1\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    tag = f"nds-docker-py-custom-{RUN}"
    res = build_result(client.build(fileobj=buf, custom_context=True, tag=tag, decode=True))
    images.append(tag)
    return res


def case_build_error():
    script = io.BytesIO(b"FROM scratch\nNOSUCHINSTRUCTION x\n")
    try:
        return build_result(client.build(fileobj=script, decode=True))
    except docker.errors.APIError as e:
        return f"api error {e.status_code}: {e.explanation}"


def case_attach():
    cid = container(["sh", "-c", "echo hello; sleep 0.5; echo bye >&2; echo end"])
    stream = client.attach(cid, stream=True, logs=True, demux=True)
    client.start(cid)
    out, err = b"", b""
    for o, e in stream:
        out += o or b""
        err += e or b""
    return json.dumps([out.decode(), err.decode()])


def case_exec_no_stdin():
    cid = container(["sleep", "60"])
    client.start(cid)
    ex = client.exec_create(cid, ["sh", "-c", "echo out; echo err >&2; exit 4"])
    out = client.exec_start(ex["Id"], demux=True)
    return json.dumps([x.decode() if x else None for x in out]) + f" exit={client.exec_inspect(ex['Id'])['ExitCode']}"


def frames(sock):
    """The multiplexed stream until EOF: (stdout, stderr)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    out, err = b"", b""
    while len(data) >= 8:
        kind, size = struct.unpack(">BxxxL", data[:8])
        payload, data = data[8 : 8 + size], data[8 + size :]
        if kind == 1:
            out += payload
        else:
            err += payload
    return out, err + data


def raw_socket(s):
    return getattr(s, "_sock", s)


def case_exec_stdin():
    # Input, then the end of input (half-close), then output after it.
    cid = container(["sleep", "60"])
    client.start(cid)
    ex = client.exec_create(cid, ["sh", "-c", "cat; echo after-eof"], stdin=True)
    sock = raw_socket(client.exec_start(ex["Id"], socket=True))
    sock.settimeout(30)
    sock.sendall(b"line 1\nline 2\n")
    sock.shutdown(socket.SHUT_WR)
    out, err = frames(sock)
    sock.close()
    return json.dumps([out.decode(), err.decode()])


def case_logs_follow():
    cid = container(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"])
    client.start(cid)
    return json.dumps(b"".join(client.logs(cid, stream=True, follow=True)).decode())


def case_wait():
    cid = container(["sh", "-c", "sleep 1; exit 3"])
    client.start(cid)
    return str(client.wait(cid, timeout=60)["StatusCode"])


def case_events():
    since = int(time.time()) - 1
    cid = container(["true"])
    client.start(cid)
    client.wait(cid, timeout=60)
    until = int(time.time()) + 1
    seen = []
    for ev in client.events(since=since, until=until, decode=True, filters={"label": f"nds-test={LABEL['nds-test']}"}):
        if ev.get("Type") == "container" and ev.get("id") == cid:
            seen.append(ev["status"])
    return " ".join(seen)


def case_put_get_archive():
    cid = container(["sleep", "60"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = os.urandom(200 * 1024)
        info = tarfile.TarInfo("blob")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    client.put_archive(cid, "/tmp", buf.getvalue())
    stream, stat = client.get_archive(cid, "/tmp/blob")
    back = io.BytesIO(b"".join(stream))
    with tarfile.open(fileobj=back) as tar:
        same = tar.extractfile("blob").read() == data
    return f"size={stat['size']} same={same}"


CASES = [(name[len("case_"):], f) for name, f in globals().items() if name.startswith("case_")]

try:
    for name, f in CASES:
        if ONLY and name not in ONLY:
            continue
        try:
            res = f()
        except Exception as e:  # the result to compare: which error
            res = f"error: {type(e).__name__}: {e}".replace("\n", " ")[:300]
        print(f"{name}\t{res}", flush=True)
finally:
    for cid in created:
        try:
            client.remove_container(cid, force=True)
        except Exception:
            pass
    for tag in images:
        try:
            client.remove_image(tag, force=True)
        except Exception:
            pass
