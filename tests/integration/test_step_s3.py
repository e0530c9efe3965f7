"""s3 steps against a real S3 API (moto server): upload, download, list, delete, failures, stop."""

from __future__ import annotations

import json
import uuid

import pytest

from helpers import EXAMPLES, run_dagu
from servers import s3_endpoint
from step_runs import nodes, out, start, status, write

boto3 = pytest.importorskip("boto3")


@pytest.fixture
def bucket():
    """A fresh bucket, emptied and removed afterwards. Yields (endpoint, bucket)."""
    endpoint = s3_endpoint()
    name = f"dagu-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=name)
    yield endpoint, name
    for obj in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)
    client.close()


def _dag(tmp_path, bucket, body: str):
    endpoint, name = bucket
    dag = f"s3_{uuid.uuid4().hex[:8]}"
    header = f"""
        type: graph
        s3:
          endpoint: {endpoint}
          region: us-east-1
          access_key_id: test
          secret_access_key: test
          force_path_style: true
          bucket: {name}
    """
    return dag, write(tmp_path, dag, header + body)


def test_upload_list_download_and_delete_by_key_and_prefix(tmp_path, bucket):
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("bravo\n")
    dag, path = _dag(tmp_path, bucket, """
        steps:
          - name: up_a
            type: s3
            command: upload
            config: {source: a.txt, key: in/a.txt, content_type: text/plain, metadata: {owner: dagu}}
          - name: up_b
            action: s3.upload
            with: {source: b.txt, key: in/deep/b.txt}
          - name: list_top
            depends: [up_a, up_b]
            action: s3.list
            with: {prefix: in/}
          - name: list_all
            depends: [up_a, up_b]
            type: s3
            command: list
            config: {prefix: in/, recursive: true}
          - name: down
            depends: up_a
            type: s3
            command: download
            config: {key: in/a.txt, destination: got/a.txt}
          - name: del_key
            depends: [down, list_top, list_all]
            type: s3
            command: delete
            config: {key: in/a.txt}
          - name: del_prefix
            depends: del_key
            type: s3
            command: delete
            config: {prefix: in/}
    """)
    result = start(tmp_path, path)
    assert result.returncode == 0, result.stdout + result.stderr
    n = nodes(status(tmp_path, dag))
    assert json.loads(out(n["up_a"]))["key"] == "in/a.txt"
    top = json.loads(out(n["list_top"]))
    assert [o["key"] for o in top["objects"]] == ["in/a.txt"] and top["prefixes"] == ["in/deep/"]
    assert sorted(o["key"] for o in json.loads(out(n["list_all"]))["objects"]) == ["in/a.txt", "in/deep/b.txt"]
    assert (tmp_path / "got" / "a.txt").read_text() == "alpha\n"
    assert json.loads(out(n["del_key"]))["deleted"] == ["in/a.txt"]
    assert json.loads(out(n["del_prefix"]))["deleted"] == ["in/deep/b.txt"]


def test_missing_key_missing_bucket_and_bad_operation_fail_clearly(tmp_path, bucket):
    dag, path = _dag(tmp_path, bucket, """
        steps:
          - name: no_key
            type: s3
            command: download
            config: {key: nothing/here.txt}
          - name: no_bucket
            type: s3
            command: list
            config: {bucket: no-such-bucket-dagu}
          - name: bad_op
            type: s3
            command: copy
          - name: no_source
            type: s3
            command: upload
            config: {source: missing.txt}
    """)
    assert start(tmp_path, path).returncode == 1
    n = nodes(status(tmp_path, dag))
    assert f"no object s3://{bucket[1]}/nothing/here.txt" in n["no_key"]["error"]
    assert "failed: bucket does not exist" in n["no_bucket"]["error"] and "s3://no-such-bucket-dagu/" in n["no_bucket"]["error"]
    assert "unknown operation 'copy'" in n["bad_op"]["error"]
    assert "missing.txt is not a file" in n["no_source"]["error"]


def test_s3_example_runs(tmp_path, bucket):
    endpoint, name = bucket
    result = run_dagu("start", str(EXAMPLES / "steps" / "s3.yaml"), home=tmp_path,
                      env={"S3_ENDPOINT": endpoint, "S3_BUCKET": name, "S3_WORKDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "s3-example" / "copy.txt").read_text() == "hello from dagu\n"
    assert not (EXAMPLES / "steps" / "s3-example").exists()
