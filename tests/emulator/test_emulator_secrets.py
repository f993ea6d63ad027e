import pytest
from pydantic import ValidationError

from local.emulator import Secrets
from sensorhook.core.flavors import Flavor

V2020 = {"keys": {"sub-b": "second", "sub-a": "first"}, "previous_keys": {}}
DS = {"headers": {"Authorization": "Basic eA=="}, "previous_headers": {}}
EFENTO = {"headers": {"X-Token": "t"}}


def test_secrets_read_the_section_names_and_the_receiver_environment_names():
    by_section = Secrets.model_validate(
        {"v2020_signing": V2020, "ds_header": DS, "efento_header": EFENTO}
    )
    by_env = Secrets.model_validate(
        {
            "V2020_SIGNING_SECRET_ARN": V2020,
            "DS_HEADER_SECRET_ARN": DS,
            "EFENTO_HEADER_SECRET_ARN": EFENTO,
        }
    )
    assert by_section == by_env
    assert by_env.v2020_key == ("sub-a", "first")
    assert by_env.headers_for(Flavor.EVERACTIVE_DS_GATEWAY_STATUS) == DS["headers"]
    assert by_env.headers_for(Flavor.EFENTO_MEASUREMENTS) == EFENTO["headers"]


def test_secrets_read_the_local_runtime_endpoints_file_and_default_the_rest(tmp_path):
    path = tmp_path / "endpoints.json"
    path.write_text(
        '{"api_url": "http://127.0.0.1:1", "webhook_secrets": '
        '{"EFENTO_HEADER_SECRET_ARN": {"arn": "arn:x", "value": {"headers": {"X-T": "v"}}}}}'
    )
    secrets = Secrets.from_file(path)
    assert secrets.efento_header.headers == {"X-T": "v"}
    assert secrets.v2020_signing == Secrets().v2020_signing


def test_secrets_refuse_an_unknown_section_or_an_empty_header_set():
    with pytest.raises(ValidationError):
        Secrets.model_validate({"v2020": V2020})
    with pytest.raises(ValidationError):
        Secrets.model_validate({"ds_header": {"headers": {}}})
