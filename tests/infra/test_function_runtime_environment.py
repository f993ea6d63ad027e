"""The environment every function runs with is the one `make bench` imports the handlers with,
so the cold imports it prints are what Lambda's init pays."""

from bench.cold_start import import_environment
from infra.constants import FUNCTION_RUNTIME_ENVIRONMENT
from tests.infra.cfn import Synth


def test_every_function_and_the_bench_share_the_runtime_environment(dev: Synth) -> None:
    # Given every sensorhook function in the synthesized template
    functions = {
        logical_id: resource["Properties"]
        for logical_id, resource in dev.resources.items()
        if resource["Type"] == "AWS::Lambda::Function"
        and str(resource["Properties"].get("Handler", "")).startswith("sensorhook.handlers.")
    }
    assert len(functions) >= 9

    # Then each carries the runtime variables (pydantic's plugin scan off, OpenBLAS on one
    # thread)
    assert FUNCTION_RUNTIME_ENVIRONMENT == {
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
        "OPENBLAS_NUM_THREADS": "1",
    }
    for logical_id, properties in functions.items():
        variables = properties["Environment"]["Variables"]
        assert variables.items() >= FUNCTION_RUNTIME_ENVIRONMENT.items(), logical_id

    # and the bench's cold imports run with exactly those values
    assert import_environment().items() >= FUNCTION_RUNTIME_ENVIRONMENT.items()
