#!/usr/bin/env python3
"""OCI images of the filters, without a Docker daemon.

build: one OCI image layout per filter in <out>/<filter>/ (oci-layout,
  index.json, blobs/sha256/...), in the "compat" variant that Istio's and
  Envoy Gateway's fetchers accept: one gzip tar layer holding plugin.wasm.
  Byte-for-byte reproducible (tar and gzip without times or owners, JSON
  with sorted keys), so the same module gives the same manifest digest.
  Prints the digest to put into WasmPlugin.spec.sha256 (Istio compares it
  with the manifest digest, not with the .wasm's hash) and writes them to
  <out>/digests.env for envsubst.

check: pulls an image from a registry over the distribution API and applies
  the checks Istio's agent and Envoy Gateway make (istio.md section 6):
  manifest digest, index resolution to linux/amd64, media types, last layer
  gzip tar, blob sizes and digests, plugin.wasm found by base name, wasm
  magic number. Writes the extracted module to a file.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
WASM_MAGIC = b"\0asm"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(module):
    """A tar with one entry, plugin.wasm, and nothing that varies by machine."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size = len(module)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(module))
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def descriptor(media_type, data, **extra):
    return dict(mediaType=media_type, digest="sha256:" + sha256(data), size=len(data), **extra)


def build_image(module, name, version, out_dir):
    if not module.startswith(WASM_MAGIC):
        sys.exit(f"{name}: not a wasm module")
    tar = layer_tar(module)
    layer = gzip_bytes(tar)
    config = canonical_json({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256(tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER_GZIP, layer)],
        "annotations": {
            "org.opencontainers.image.title": name,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.source": "https://github.com/envoy-faas/envoy-faas",
        },
    })
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, manifest,
                                 annotations={"org.opencontainers.image.ref.name": version})],
    })
    image_dir = os.path.join(out_dir, name)
    blobs = os.path.join(image_dir, "blobs", "sha256")
    if os.path.isdir(image_dir):
        for root, _, files in os.walk(image_dir):
            for f in files:
                os.remove(os.path.join(root, f))
    os.makedirs(blobs, exist_ok=True)
    for blob in (layer, config, manifest):
        with open(os.path.join(blobs, sha256(blob)), "wb") as f:
            f.write(blob)
    with open(os.path.join(image_dir, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(image_dir, "index.json"), "wb") as f:
        f.write(index)
    return sha256(manifest)


def cmd_build(args):
    os.makedirs(args.out, exist_ok=True)
    env_lines = []
    for name in args.filters:
        path = os.path.join(args.dist, name.replace("-", "_") + ".wasm")
        with open(path, "rb") as f:
            digest = build_image(f.read(), name, args.version, args.out)
        print(f"{name}:{args.version}  manifest digest (WasmPlugin.spec.sha256): {digest}")
        env_lines.append(f"{name.replace('-', '_').upper()}_SHA256={digest}")
    with open(os.path.join(args.out, "digests.env"), "w") as f:
        f.write("\n".join(env_lines) + "\n")


class Fetch:
    """The registry side of the fetchers: plain GETs with Accept headers."""

    def __init__(self, registry, repo):
        self.base = f"http://{registry}/v2/{repo}"

    def get(self, path, accept=None):
        req = urllib.request.Request(self.base + path)
        if accept:
            req.add_header("Accept", ", ".join(accept))
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read(), resp.headers

    def blob(self, desc):
        data, headers = self.get("/blobs/" + desc["digest"])
        length = headers.get("Content-Length")
        check(length is None or int(length) == desc["size"],
              f"blob Content-Length {length} differs from the descriptor size {desc['size']}")
        check(len(data) == desc["size"], f"blob size {len(data)} != {desc['size']}")
        check("sha256:" + sha256(data) == desc["digest"], "blob digest mismatch")
        return data


def check(ok, what):
    if not ok:
        sys.exit(f"image check failed: {what}")


def cmd_check(args):
    fetch = Fetch(args.registry, args.repo)
    accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
    body, headers = fetch.get("/manifests/" + args.tag, accept)
    digest = sha256(body)
    manifest = json.loads(body)
    check(manifest.get("schemaVersion") == 2, "schema 1 manifests are rejected")
    check("mediaType" in manifest, "the manifest body names its mediaType")
    if manifest["mediaType"] in (OCI_INDEX, DOCKER_LIST):
        # go-containerregistry: the first linux/amd64 child (no platform counts).
        child = next((m for m in manifest["manifests"]
                      if m.get("platform", {"os": "linux", "architecture": "amd64"})
                      .get("architecture") == "amd64"), None)
        check(child is not None, "no child with platform linux/amd64")
        body, _ = fetch.get("/manifests/" + child["digest"], accept)
        digest = sha256(body)
        check("sha256:" + digest == child["digest"], "child manifest digest mismatch")
        manifest = json.loads(body)
    layers = manifest.get("layers", [])
    if manifest["mediaType"] == DOCKER_MANIFEST:
        check(layers and layers[-1]["mediaType"] == DOCKER_LAYER_GZIP,
              "docker manifest: the last layer must be a gzip rootfs diff")
        module = compat_module(fetch.blob(layers[-1]))
        variant = "docker"
    elif layers and layers[-1]["mediaType"] == OCI_LAYER_GZIP:
        module = compat_module(fetch.blob(layers[-1]))
        variant = "compat"
        check(sum(1 for l in layers if l["mediaType"] == OCI_LAYER_GZIP) == 1,
              "compat: exactly one wasm layer")
    else:
        check(len(layers) == 2, "oci artifact: exactly two layers")
        wasm = [l for l in layers if l["mediaType"] == WASM_LAYER]
        check(len(wasm) == 1, "oci artifact: one wasm content layer")
        module = fetch.blob(wasm[0])
        variant = "oci"
    check(len(module) >= 8 and module.startswith(WASM_MAGIC), "not a wasm module")
    check(args.expect_digest is None or digest == args.expect_digest,
          f"manifest digest {digest} != expected {args.expect_digest}")
    with open(args.out, "wb") as f:
        f.write(module)
    print(json.dumps({"digest": digest, "variant": variant, "module_sha256": sha256(module),
                      "module_size": len(module)}))


def compat_module(layer):
    """gunzip, then the first tar entry whose base name is plugin.wasm."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        for member in tar:
            if os.path.basename(member.name) == "plugin.wasm" and member.isfile():
                return tar.extractfile(member).read(member.size)
    sys.exit("image check failed: no plugin.wasm in the layer")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--dist", default="dist")
    b.add_argument("--out", default="dist/oci")
    b.add_argument("--version", required=True)
    b.add_argument("filters", nargs="+")
    c = sub.add_parser("check")
    c.add_argument("--registry", required=True, help="host:port (plain HTTP)")
    c.add_argument("--repo", required=True)
    c.add_argument("--tag", required=True)
    c.add_argument("--expect-digest")
    c.add_argument("--out", required=True, help="where to write the extracted module")
    args = parser.parse_args()
    {"build": cmd_build, "check": cmd_check}[args.command](args)


if __name__ == "__main__":
    main()
