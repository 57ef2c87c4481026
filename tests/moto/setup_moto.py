"""Prepares a fresh moto_server for the conformance tests, then enforces auth.

Usage: setup_moto.py http://127.0.0.1:PORT
Prints one JSON object: the invoker's key, the role it may assume, session credentials from STS
AssumeRole, a key of a user without permissions, and the function's ARN.
Runs while moto still accepts unauthenticated calls; the last step
(/moto-api/reset-auth 0) makes moto verify SigV4 on every later request.
"""
import io
import json
import sys
import urllib.request
import zipfile

import boto3

endpoint = sys.argv[1]
region = "us-east-1"


def moto_api(path, body, content_type):
    req = urllib.request.Request(endpoint + path, data=body, method="POST",
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req) as resp:
        resp.read()


def client(service, key="setup", secret="setup"):
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=key, aws_secret_access_key=secret)


# Lambda without docker: the "simple" backend echoes the payload.
moto_api("/moto-api/config", json.dumps({"lambda": {"use_docker": False}}).encode(), "application/json")

allow_lambda = json.dumps({"Version": "2012-10-17", "Statement": [
    # moto checks the action "lambda:Invoke"; AWS calls it lambda:InvokeFunction.
    {"Effect": "Allow", "Action": ["lambda:*"], "Resource": "*"}]})
trust = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})

iam = client("iam")
role_arn = iam.create_role(RoleName="invoker-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
iam.put_role_policy(RoleName="invoker-role", PolicyName="invoke", PolicyDocument=allow_lambda)
iam.create_user(UserName="invoker")
iam.put_user_policy(UserName="invoker", PolicyName="invoke", PolicyDocument=allow_lambda)
# The filter's aws_assume_role_arn tests: the invoker may assume the role.
iam.put_user_policy(UserName="invoker", PolicyName="assume", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}))
invoker = iam.create_access_key(UserName="invoker")["AccessKey"]
iam.create_user(UserName="nobody")
nobody = iam.create_access_key(UserName="nobody")["AccessKey"]

code = io.BytesIO()
with zipfile.ZipFile(code, "w") as z:
    z.writestr("handler.py", "def handler(event, context):\n    return event\n")
function_arn = client("lambda").create_function(
    FunctionName="echo", Runtime="python3.12", Role=role_arn, Handler="handler.handler",
    Code={"ZipFile": code.getvalue()})["FunctionArn"]

session = client("sts", invoker["AccessKeyId"], invoker["SecretAccessKey"]).assume_role(
    RoleArn=role_arn, RoleSessionName="envoy-faas")["Credentials"]

moto_api("/moto-api/reset-auth", b"0", "text/plain")

print(json.dumps({
    "invoker": {"key": invoker["AccessKeyId"], "secret": invoker["SecretAccessKey"]},
    "nobody": {"key": nobody["AccessKeyId"], "secret": nobody["SecretAccessKey"]},
    "session": {"key": session["AccessKeyId"], "secret": session["SecretAccessKey"],
                "token": session["SessionToken"]},
    "function_arn": function_arn,
    "role_arn": role_arn,
}))
