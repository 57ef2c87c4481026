#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, fuzz/seeds/<target>/, from the
inputs the unit and integration tests use: every plugin config shipped in
envoy/*.yaml (by the filter that loads it), the exported Kong blocks, the
unit tests' invalid configs, and the requests and function answers the
tests send. Run it after changing those; `make fuzz` reads the result."""

import glob
import hashlib
import json
import os
import shutil

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")

# From the unit tests: configs each filter must refuse, naming a field.
INVALID = {
    "openfunction": [
        '{"function_uri": "ftp://x/"}',
        '{"function_uri": "http://h/f", "authorization": {"service_token": "no-colon"}}',
        '{"function_uri": "http://h/f", "timeout": 5}',
        '{"routes": {"a": {"function_uri": "http://h/f", "strip_prefix": "x"}}}',
        '{"function_uri": "http://h/f", "max_resp_body_size": 33554433}',
        '{"function_uri": "http://h/f", "body_layout": "sideways", "placement": "upstream"}',
    ],
    "azure_functions": [
        '{"appname": "a", "functionname": "f", "function_uri": "http://x/"}',
        '{"function_uri": "http://app.azurewebsites.net/api/f", "authorization": {"apikey": 5}}',
        '{"appname": "a b", "functionname": "f", "https": "yes"}',
    ],
    "gcp_functions": [
        '{"function_uri": "https://svc.a.run.app", "path_translation": "APPEND"}',
        '{"function_uri": "https://svc.a.run.app", "authorization": {"id_token": {"header": "x-token"}}}',
        '{"function_uri": "https://r-p.cloudfunctions.net/f", "authorization": {"id_token": {"audience": "a b"}}}',
        # ID tokens as the metadata server answers (the target parses them too).
        'eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln',
        'eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJzb29uIn0.c2ln',
    ],
    "aws_lambda": [
        '{"function_name": "f", "aws_key": "AK", "aws_secret": "SK", "qualifier": "two", "function_name": "f:one"}',
        '{"function_name": "f", "aws_key": "AK", "aws_secret": "SK", "proxy_url": "http://p:1"}',
        '{"function_name": "arn:aws:lambda:us-east-1:1:function:f", "aws_region": "eu-west-1", "aws_key": "AK", "aws_secret": "SK"}',
        '{"function_uri": "https://abc.lambda-url.eu-west-3.on.aws/", "authorization": {"iam": {"accesskey": "A"}}}',
        '{"function_name": "f", "aws_key": "AK", "aws_secret": "SK", "payload_format": "apigateway_v2", "forward_request_uri": true}',
        '{"function_name": "f", "aws_assume_role_arn": "arn:aws:iam::1:role/r", "aws_key": "AK", "aws_secret": "SK", "aws_role_session_name": "a b"}',
    ],
}

# From the integration tests: requests as clients send them.
REQUESTS = [
    b"GET /\n\n",
    b"GET /api/orders/42?a=1&a=2&sp=x+y\nhost: gateway.test\ncookie: c1=1; c2=2\nx-multi: one\nx-multi: two\n\n",
    b'POST /f/p?k=1\ncontent-type: application/json\n\n{"a":1}',
    b"POST /up\ncontent-type: application/octet-stream\n\n\x00\xff\xfe binary",
    b"GET /s/../../etc/passwd?%zz=%%\nconnection: x-hop\nx-hop: 1\n\n",
    b"PUT /a%20b/%E2%82%AC?q=%C3%A9&=&&k\nx-forwarded-for: 10.0.0.1\ncontent-type: application/x-www-form-urlencoded\n\na=1&b=%20",
    b"DELETE /api\nauthorization: Basic dTpw\ntransfer-encoding: chunked\n\n",
    # Issue 27: dot segments behind encoded separators, client forwarding headers.
    b"GET /api/..%2F..%2Fadmin?x=1\n\n",
    b"GET /api/a%2F..%2F..%5Cadmin\n\n",
    b"GET /api/..\\..\\admin\nx-forwarded-prefix: /evil\nx-forwarded-port: 8443\nforwarded: for=1.2.3.4\n\n",
]

# Credentials a filter sent, then what an upstream said (redact_log).
QUOTES = [
    b"x-amz-security-token: IQoJb3JpZ2luX2VjEXAMPLE//session+token=\nauthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024\n\nThe Canonical String for this request should have been\n'POST\n/\n\nx-amz-security-token:IQoJb3JpZ2luX2VjEXAMPLE//session+token=\n'",
    b"x-functions-key: abcdefgh12345678\n\nGET /api/f?code=abcdefgh12345678 refused\r\n",
    b"authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.sig\n\n{\"access_token\": \"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.sig\", \"error\": \"x\"}",
]

# From the unit tests: what functions and the Invoke API answer.
ANSWERS = [
    b"200\ncontent-type: application/json\n\n{\"statusCode\":201,\"headers\":{\"x-k\":\"v\"},\"body\":\"ok\"}",
    b"200\n\n{\"statusCode\":200,\"cookies\":[\"a=1; Secure\",\"b=2\"],\"body\":\"Yw==\",\"isBase64Encoded\":true}",
    b"200\nx-amz-function-error: Unhandled\n\n{\"errorMessage\":\"boom\",\"errorType\":\"Error\"}",
    b"429\nx-amzn-errortype: TooManyRequestsException\n\n{\"message\":\"Rate exceeded\"}",
    b"504\ncontent-length: 24\ncontent-type: text/plain\n\nupstream request timeout",
    b"503\ncontent-length: 19\ncontent-type: text/plain\n\nno healthy upstream",
    b"502\ncontent-type: text/plain\n\nupstream connect error or disconnect/reset before headers. reset reason: protocol error",
    b"200\ncontent-type: text/csv\ncontent-length: 42\n\n",
    b"200\n\n[1,2]",
    b"200\n\n\"just a string\"",
    b"200\n\n{\"statusCode\":101,\"headers\":{\"upgrade\":\"websocket\"}}",
    b"403\nx-amzn-errortype: SignatureDoesNotMatch\n\n{\"message\":\"x-amz-security-token:TOKEN\\nsplit\"}",
]


def shipped_configs():
    """(filter, plugin config) of every wasm filter in envoy/*.yaml."""
    def walk(node):
        if isinstance(node, dict):
            code = json.dumps(node.get("vm_config", {}).get("code", {}))
            value = node.get("configuration", {}).get("value")
            if value is not None and ".wasm" in code:
                for name in INVALID:
                    if name + ".wasm" in code:
                        yield name, value
            for child in node.values():
                yield from walk(child)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child)

    for path in sorted(glob.glob(os.path.join(ROOT, "envoy", "*.yaml"))):
        with open(path) as f:
            yield from walk(yaml.safe_load(f))


def write(target, items):
    directory = os.path.join(SEEDS, target)
    os.makedirs(directory, exist_ok=True)
    for item in items:
        data = item.encode() if isinstance(item, str) else item
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def eventstream_message(headers, payload):
    """One eventstream message (string headers), CRCs by zlib's CRC-32."""
    import struct
    import zlib

    h = b"".join(
        bytes([len(n)]) + n.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
        for n, v in headers
    )
    prelude = struct.pack(">II", 16 + len(h) + len(payload), len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + h + payload
    return body + struct.pack(">I", zlib.crc32(body))


# Lambda InvokeWithResponseStream answers: chunks (one with the HTTP
# metadata prelude), a successful and a failed InvokeComplete, an
# exception; the first byte picks the fuzzer's piece size.
CHUNK = [(":event-type", "PayloadChunk"), (":message-type", "event")]
DONE = [(":event-type", "InvokeComplete"), (":content-type", "application/json"),
        (":message-type", "event")]
EVENTSTREAMS = [
    b"\x07" + eventstream_message(CHUNK, b'{"statusCode":200}' + b"\0" * 8 + b"Hello ")
    + eventstream_message(CHUNK, b"world") + eventstream_message(DONE, b"{}"),
    b"\x00" + eventstream_message(DONE, b'{"ErrorCode":"Unhandled","ErrorDetails":"x"}'),
    b"\x3f" + eventstream_message(
        [(":message-type", "exception"), (":exception-type", "ServiceException")],
        b'{"message":"m"}'),
]


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    configs = {name: list(invalid) for name, invalid in INVALID.items()}
    for name, value in shipped_configs():
        configs[name].append(value)
    for plugin, name in [("aws-lambda", "aws_lambda"), ("azure-functions", "azure_functions")]:
        with open(os.path.join(ROOT, "tests", "data", "kong", f"{plugin}.admin-api.json")) as f:
            configs[name].append(json.dumps(json.load(f)["config"]))
    for name, items in configs.items():
        write(f"config_{name}", items)
    for target in ["forward_request", "apigateway_events", "sigv4_canonical", "sigv4_differential"]:
        write(target, REQUESTS)
    for target in ["invoke_result", "function_response"]:
        write(target, ANSWERS)
    write("redact_log", QUOTES)
    write("eventstream", EVENTSTREAMS)
    for target in sorted(os.listdir(SEEDS)):
        print(f"{target}: {len(os.listdir(os.path.join(SEEDS, target)))} seeds")


if __name__ == "__main__":
    main()
