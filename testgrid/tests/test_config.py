"""``testgrid config``: the TestGrid YAML for a published job, and what each bad input gets."""

from __future__ import annotations

import pytest
import yaml

from testgrid.tests.junit_samples import run_testgrid


def test_defaults_name_everything_after_the_job() -> None:
    result = run_testgrid("config", "--bucket", "gs://my-ci-results", "--job", "ci-critest-myruntime")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == """\
test_groups:
- name: ci-critest-myruntime
  gcs_prefix: my-ci-results/logs/ci-critest-myruntime
  disable_prowjob_analysis: true
  column_header:
  - configuration_value: runtime-version
dashboards:
- name: ci-critest-myruntime
  dashboard_tab:
  - name: ci-critest-myruntime
    test_group_name: ci-critest-myruntime
"""


def test_every_option() -> None:
    result = run_testgrid("config", "--bucket", "gs://my-ci-results/critest/", "--job", "ci-critest-myruntime",
                          "--dashboard", "myruntime-signal", "--tab", "critest", "--test-group", "myruntime-critest",
                          "--description", "critest: CRI validation", "--days-of-results", "30",
                          "--column-header", "runtime-version", "--column-header", "os")
    assert (result.returncode, result.stderr) == (0, "")
    assert yaml.safe_load(result.stdout) == {
        "test_groups": [{
            "name": "myruntime-critest",
            "gcs_prefix": "my-ci-results/critest/logs/ci-critest-myruntime",
            "disable_prowjob_analysis": True,
            "days_of_results": 30,
            "column_header": [{"configuration_value": "runtime-version"}, {"configuration_value": "os"}],
        }],
        "dashboards": [{"name": "myruntime-signal", "dashboard_tab": [{
            "name": "critest", "test_group_name": "myruntime-critest", "description": "critest: CRI validation"}]}],
    }


def test_bare_bucket_name_is_a_gcs_bucket() -> None:
    result = run_testgrid("config", "--bucket", "my-ci-results", "--job", "j")
    assert "  gcs_prefix: my-ci-results/logs/j\n" in result.stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["--bucket", "/tmp/bucket", "--job", "j"], "invalid value for '--bucket': '/tmp/bucket' is a local path"),
    (["--bucket", "file:///tmp/bucket", "--job", "j"], "TestGrid reads Google Cloud Storage"),
    (["--bucket", "gs://My_Bucket", "--job", "j"], "'My_Bucket' is not a GCS bucket name"),
    (["--bucket", "gs://bk1", "--job", "a/b"], "invalid value for '--job': 'a/b' is not a job name"),
    (["--bucket", "gs://bk1", "--job", "j", "--days-of-results", "0"], "invalid value for '--days-of-results'"),
    (["--job", "j"], "missing option '--bucket'"),
], ids=["local path", "file url", "bad bucket name", "bad job", "zero days", "no bucket"])
def test_bad_config_input_gets_one_line(args: list[str], expected: str) -> None:
    result = run_testgrid("config", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("testgrid config: ")
    assert expected in result.stderr


@pytest.mark.parametrize("args", [[], ["--help"], ["publish", "--help"], ["config", "-h"], ["view", "--help"]])
def test_help_succeeds(args: list[str]) -> None:
    result = run_testgrid(*args)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("Usage: testgrid")


def test_unknown_command_gets_one_line() -> None:
    result = run_testgrid("upload")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "testgrid: no such command 'upload'. (see testgrid --help)\n"
