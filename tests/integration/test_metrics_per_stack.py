"""Two stacks in one account: the functions name their stack in every metric they emit (the `stack`
dimension, from the STACK_NAME that template.yaml fills with the stack's name), and every alarm query and
dashboard search of template.yaml, evaluated over what the functions really emitted, counts its own stack's
figures and never the other stack's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from local.simulators.xvid import XvidSimulator
from local.template import load_template, resource
from transcode_core.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = "xvid"
CREDENTIALS = {"client_id": "cid", "client_secret": "csecret"}
NAMESPACE = "TranscodeStatus"


def emf_documents(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def metrics_of(documents: list[dict]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) of every metric of every EMF document, per dimension set."""
    found = []
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = {name: document[name] for name in dimension_set}
                found += [(directive["Namespace"], metric["Name"], dimensions) for metric in directive["Metrics"]]
    return found


def run_as(stack, name: str, sim, capfd) -> list[tuple[str, str, dict[str, str]]]:
    """A poll, a misconfigured poll and jobs API calls of the stack `name`; the metrics they emitted."""
    capfd.readouterr()
    stack.configure(PROVIDER, sim.url, CREDENTIALS, env={"STACK_NAME": name})
    stack.poll(PROVIDER)
    stack.configure(PROVIDER, sim.url, {"client_id": "", "client_secret": ""}, env={"STACK_NAME": name})
    with pytest.raises(ConfigurationError, match="client_id"):  # counts ConfigurationErrors
        stack.poll(PROVIDER)
    stack.function_env["jobs_api"] = {"TABLE_NAME": stack.table_name, "TOPIC_ARN": stack.topic_arn, "STACK_NAME": name}
    assert stack.jobs_api("GET", "no-such-provider", "1")[0] == 400  # counts RequestsRejected
    return metrics_of(emf_documents(capfd.readouterr().out))


def insights_selects(expression: str, metric: tuple[str, str, dict[str, str]]) -> bool:
    """Whether a Metrics Insights query `SELECT FN(Metric) FROM <namespace | SCHEMA(ns, dims...)>
    [WHERE dim = 'value']` reads this metric (SCHEMA: exactly those dimensions)."""
    parsed = re.fullmatch(
        r"SELECT \w+\((\w+)\) FROM (?:SCHEMA\((\w+)((?:, \w+)*)\)|(\w+))(?: WHERE (\w+) = '([^']*)')?", expression
    )
    assert parsed, f"the test cannot read {expression!r}"
    wanted, schema_namespace, schema_dimensions, namespace, key, value = parsed.groups()
    metric_namespace, name, dimensions = metric
    if name != wanted or metric_namespace != (schema_namespace or namespace):
        return False
    if schema_namespace and set(dimensions) != {part.strip() for part in schema_dimensions.split(",") if part}:
        return False
    return key is None or dimensions.get(key) == value


def search_selects(expression: str, metric: tuple[str, str, dict[str, str]]) -> bool:
    """Whether a dashboard SEARCH('{ns,dims...} key="value" MetricName="M"') draws this metric."""
    parsed = re.fullmatch(r"\{(\w+),([\w,]+)\}((?: \w+=\"[^\"]*\")*)", expression)
    assert parsed, f"the test cannot read {expression!r}"
    namespace, schema, terms = parsed.groups()
    metric_namespace, name, dimensions = metric
    if metric_namespace != namespace or set(dimensions) != set(schema.split(",")):
        return False
    return all(
        (name if key == "MetricName" else dimensions.get(key)) == value
        for key, value in re.findall(r"(\w+)=\"([^\"]*)\"", terms)
    )


def test_each_stack_s_alarms_and_dashboard_count_its_own_metrics_only(stack, capfd):
    template = load_template(ROOT / "template.yaml")
    queries = {
        name: query["Expression"].get("Fn::Sub") if isinstance(query["Expression"], dict) else query["Expression"]
        for name, body in template["Resources"].items()
        if body["Type"] == "AWS::CloudWatch::Alarm"
        for query in body["Properties"].get("Metrics", [])
    }
    dashboard = resource(template, "OperationsDashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    searches = [search.replace('\\"', '"') for search in re.findall(r"SEARCH\('([^']*)'", dashboard)]
    assert queries and searches

    with XvidSimulator(**CREDENTIALS) as sim:
        sim.add_job()
        emitted = {name: run_as(stack, name, sim, capfd) for name in ("blue", "green")}

    # Every metric carries its stack (but Powertools' ColdStart, emitted before the handler runs, whose
    # function_name dimension is the stack's own: Lambda names functions after their stack)
    for name, metrics in emitted.items():
        ours = [dimensions for _, metric, dimensions in metrics if metric != "ColdStart"]
        assert ours and all(dimensions.get("stack") == name for dimensions in ours), name
    for name, other in (("blue", "green"), ("green", "blue")):
        for alarm, query in queries.items():
            query = query.replace("${AWS::StackName}", name)
            # Each alarm reads what its own stack's functions emit...
            assert any(insights_selects(query, metric) for metric in emitted[name]), (alarm, name)
            # ...and nothing the other stack's emit
            assert not any(insights_selects(query, metric) for metric in emitted[other]), (alarm, name)
        for search in searches:
            search = search.replace("${AWS::StackName}", name)
            assert any(search_selects(search, metric) for metric in emitted[name]), (search, name)
            assert not any(search_selects(search, metric) for metric in emitted[other]), (search, name)
