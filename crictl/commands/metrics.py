"""Metric commands: ``metricdescs`` (what metrics exist) and ``metricsp`` (the pods' metric values)."""

from __future__ import annotations

import click

from cri_api import pb
from cri_api.client import RuntimeClient
from crictl.context import Settings, doing, pass_settings
from crictl.output import OUTPUT_JSON, OUTPUT_YAML, echo_proto, repeat


@click.command("metricdescs")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML]), default=OUTPUT_JSON,
              show_default=True, help="Output format, One of: json|yaml")
@pass_settings
def metricdescs_command(settings: Settings, output: str) -> None:
    """List metric descriptors.

    Prints {"descriptors": [...]}: the name, help text and label keys of every metric that metricsp
    can report.
    """
    with doing("listing metric descriptors"):
        response = settings.runtime().list_metric_descriptors(pb.ListMetricDescriptorsRequest())
    echo_proto(response, output)


def show_pod_metrics(runtime: RuntimeClient, output: str) -> None:
    with doing("listing pod sandbox metrics"):
        response = runtime.list_pod_sandbox_metrics(pb.ListPodSandboxMetricsRequest())
    echo_proto(response, output)


@click.command("metricsp")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML]), default=OUTPUT_JSON,
              show_default=True, help="Output format, One of: json|yaml")
@click.option("-w", "--watch", is_flag=True, help="Watch pod metrics until Ctrl-C")
@pass_settings
def metricsp_command(settings: Settings, output: str, watch: bool) -> None:
    """List pod metrics.

    Metrics are unstructured key/value pairs gathered by CRI meant to replace cAdvisor's
    /metrics/cadvisor endpoint. Prints {"podMetrics": [...]}, once or, with -w, every half second.
    """
    runtime = settings.runtime()
    repeat(lambda: show_pod_metrics(runtime, output), watch)
