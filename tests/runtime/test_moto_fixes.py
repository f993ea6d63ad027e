"""The runtime's corrections to moto keep its answers and drop its costs."""

import copy
import gc
import json
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import moto.core.responses as moto_responses
import pytest
import requests
import werkzeug
from moto import mock_aws
from moto.core.responses import ActionContext, ActionResult
from moto.core.utils import method_names_from_class
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer
from moto.sqs.models import Message, Queue
from moto.sqs.responses import SQSResponse

from local.runtime.moto_fixes import (
    QUEUE_COUNTS,
    actions_are_looked_up_once,
    backends_are_found_without_a_lock,
    dynamodb_items_are_dumped_as_json,
    item_sizes_are_counted_once_per_write,
    models_are_not_tracked,
    requests_leave_no_garbage_cycles,
    sqs_reads_the_clock_once,
    sqs_sends_are_dumped_as_json,
    sqs_sends_count_no_backlog,
    stream_records_are_numbered_atomically,
    update_expressions_are_checked_at_the_root,
    update_expressions_are_parsed_once,
    update_expressions_check_node_types_once,
    update_expressions_copy_cheaply,
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_moto_keeps_no_reference_to_the_models_it_creates() -> None:
    # Given moto's own tracking of every model object (a list per class that only grows)
    Item(DynamoType({"S": "before"}), None, {})
    assert Item.instances_tracked

    # When the runtime's fix is on, the list is emptied and new objects are not added to it
    undo = models_are_not_tracked()
    try:
        item = Item(DynamoType({"S": "k"}), None, {"v": {"N": "1"}})
        message = Message("id", "body")
        assert Item.instances_tracked == []
        assert Message.instances_tracked == []
        # and the objects are whole
        assert item.attrs["v"] == DynamoType({"N": "1"})
        assert message.body == "body"
    finally:
        undo()
    Item(DynamoType({"S": "after"}), None, {})
    assert len(Item.instances_tracked) == 1


def test_queue_counts_are_moto_s_own_with_one_clock_reading(aws: None) -> None:
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        moto_s = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        undo = sqs_reads_the_clock_once()
        try:
            ours = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        finally:
            undo()
        assert (
            ours
            == moto_s
            == {
                "ApproximateNumberOfMessages": "3",
                "ApproximateNumberOfMessagesNotVisible": "2",
                "ApproximateNumberOfMessagesDelayed": "1",
            }
        )
        assert sorted(m["Body"] for m in received) == ["2", "3", "4"]


def test_stream_records_written_from_many_threads_are_numbered_once_each(aws: None) -> None:
    # Given a table with a stream, written by eight threads at once (the local runtime's
    # functions share one process; the processor writes readings items concurrently)
    undo = stream_records_are_numbered_atomically()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over often, as a loaded machine does
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
            from moto.dynamodb.models import dynamodb_backends

            backend = dynamodb_backends["123456789012"]["us-east-1"]

            def write(thread: int) -> None:
                for n in range(150):
                    backend.put_item("t", {"k": {"S": f"{thread}-{n}"}, "v": {"S": "x" * 200}})

            threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            shard = backend.get_table("t").stream_shard
            numbers = [int(r.record["dynamodb"]["SequenceNumber"]) for r in shard.items]
    finally:
        sys.setswitchinterval(switch)
        undo()
    # Then each record's number is its place in the shard, which a shard iterator relies on
    # to read each record once
    first = shard.starting_sequence_number
    assert numbers == list(range(first, first + 8 * 150))


def _pk_table(client: Any, name: str) -> None:
    """An on-demand table keyed by a string `pk`, the shape every DynamoDB check here writes."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _item_operations() -> list[dict[str, Any]]:
    """What the item operations answer (metadata aside), on a fresh table."""
    client = boto3.client("dynamodb")
    _pk_table(client, "t")
    item = {
        "pk": {"S": "a"},
        "n": {"N": "1.5"},
        "b": {"B": b"\x00\xff"},
        "flag": {"BOOL": True},
        "nothing": {"NULL": True},
        "list": {"L": [{"S": "x"}, {"M": {"inner": {"NS": ["1", "2"]}}}]},
    }
    answers: list[dict[str, Any]] = [
        client.put_item(TableName="t", Item=item, ReturnConsumedCapacity="TOTAL"),
        client.put_item(TableName="t", Item={"pk": {"S": "b"}, "n": {"N": "2"}}),
        client.get_item(TableName="t", Key={"pk": {"S": "a"}}, ConsistentRead=True),
        client.get_item(TableName="t", Key={"pk": {"S": "missing"}}),
        client.update_item(
            TableName="t",
            Key={"pk": {"S": "b"}},
            UpdateExpression="ADD n :one SET s = :s",
            ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"SS": ["p", "q"]}},
            ReturnValues="ALL_NEW",
        ),
        client.query(
            TableName="t",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "a"}},
            ReturnConsumedCapacity="TOTAL",
        ),
        client.scan(TableName="t", Limit=1),
        client.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "a"}}]}}),
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "c"}}}}]
        ),
        client.delete_item(TableName="t", Key={"pk": {"S": "c"}}, ReturnValues="ALL_OLD"),
    ]
    try:
        client.put_item(
            TableName="t", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)"
        )
    except client.exceptions.ConditionalCheckFailedException as error:
        answers.append({"error": error.response["Error"]})
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    return answers


def test_dynamodb_item_answers_dumped_as_json_are_those_of_moto_s_serializer(aws: None) -> None:
    # Given what moto's own serializer answers to the item operations
    with mock_aws():
        expected = _item_operations()
    # When the runtime dumps their results as JSON instead, every answer reads back the same
    undo = dynamodb_items_are_dumped_as_json()
    try:
        with mock_aws():
            assert _item_operations() == expected
    finally:
        undo()


def _sends(sqs: Any) -> None:
    """SendMessage to a standard and a FIFO queue, with and without attributes, and failing."""
    plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName="ordered.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=plain, MessageBody='{"reading": 1.5, "text": "é"}')
    sqs.send_message(
        QueueUrl=plain,
        MessageBody="with attributes",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "reading"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
        DelaySeconds=5,
    )
    sqs.send_message(QueueUrl=fifo, MessageBody="first", MessageGroupId="g")
    sqs.send_message(QueueUrl=fifo, MessageBody="second", MessageGroupId="g")
    with pytest.raises(sqs.exceptions.ClientError):
        sqs.send_message(QueueUrl=plain + "-missing", MessageBody="lost")
    with pytest.raises(sqs.exceptions.ClientError):
        sqs.send_message(QueueUrl=fifo, MessageBody="no group")


def test_sqs_send_answers_dumped_as_json_are_those_of_moto_s_serializer(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given moto's own serializer, counted when it is called
    moto_s = ActionResult.execute_result
    serialized: list[str] = []

    def counted(self: ActionResult, context: ActionContext) -> Any:
        serialized.append(context.operation_model.name)
        return moto_s(self, context)

    monkeypatch.setattr(ActionResult, "execute_result", counted)
    undo = sqs_sends_are_dumped_as_json()
    fixed = ActionResult.execute_result
    answers: list[tuple[Any, Any]] = []

    def both(self: ActionResult, context: ActionContext) -> Any:
        ours = fixed(self, context)
        if context.operation_model.name == "SendMessage":
            (status, headers, body), moto_answer = ours, moto_s(self, context)
            answers.append(((status, dict(headers), body), moto_answer))  # before moto adds to it
        return ours

    monkeypatch.setattr(ActionResult, "execute_result", both)
    try:
        # When SendMessage answers in the JSON protocol (as boto3 asks)
        with mock_aws():
            _sends(boto3.client("sqs"))
    finally:
        undo()
    # Then every answer is moto's own: status, headers and the JSON body
    assert len(answers) == 6
    for (status, headers, body), (moto_status, moto_headers, moto_body) in answers:
        assert (status, headers) == (moto_status, moto_headers)
        assert json.loads(body) == json.loads(moto_body)
    sent = [json.loads(body) for (_, _, body), _ in answers[:4]]
    assert "MD5OfMessageAttributes" in sent[1]
    assert len({answer["MessageId"] for answer in sent}) == 4
    # and only the two failures took moto's serializer
    assert serialized.count("SendMessage") == 2


@pytest.mark.parametrize(
    "result",
    [
        {"MessageId": "m", "MD5OfMessageBody": "d", "SequenceNumber": None},
        {"MessageId": "m", "MD5OfMessageBody": "d", "NotAMember": "x"},
        {"MessageId": "m", "MD5OfMessageBody": 5},
        {"MessageId": "m", "MD5OfMessageBody": "d", "SequenceNumber": "10000000000000000001"},
    ],
)
def test_sqs_send_results_moto_s_serializer_would_change_are_left_to_it(
    result: dict[str, Any],
) -> None:
    # Given SendMessage results that are not all members with string values, and one that is
    from moto.core.serialize import JSONSerializer
    from moto.core.utils import get_service_model

    service = get_service_model("sqs")
    context = ActionContext(
        service,
        service.operation_model("SendMessage"),
        JSONSerializer,
        object(),  # type: ignore[arg-type]
    )
    expected = ActionResult(dict(result)).execute_result(context)
    # When the fix answers them, each answer is the one moto's serializer gives
    undo = sqs_sends_are_dumped_as_json()
    try:
        status, headers, body = ActionResult(dict(result)).execute_result(context)
    finally:
        undo()
    assert (status, headers) == expected[:2]
    assert json.loads(body) == json.loads(expected[2])


def test_sqs_sends_in_the_query_protocol_still_answer_xml(moto_server: str) -> None:
    # Given the fix on and a client speaking SQS's query protocol (older SDKs, the AWS CLI v1)
    undo = sqs_sends_are_dumped_as_json()
    try:
        url = boto3.client("sqs", endpoint_url=moto_server).create_queue(QueueName="q")["QueueUrl"]
        answer = requests.post(
            moto_server,
            data={"Action": "SendMessage", "QueueUrl": url, "MessageBody": "hello"},
            headers={  # the credential scope names the service moto answers as
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/"
                "aws4_request, SignedHeaders=host, Signature=0"
            },
            timeout=10,
        )
    finally:
        undo()
    # Then moto's serializer answers it, in XML
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/xml") or answer.headers[
        "Content-Type"
    ].endswith("xml")
    assert "<SendMessageResult>" in answer.text
    assert "<MD5OfMessageBody>5d41402abc4b2a76b9719d911017c592</MD5OfMessageBody>" in answer.text


def _queue_sends(sqs: Any) -> dict[str, Any]:
    """Sends to every kind of queue (a backlog, FIFO with and without content-based
    deduplication, KMS, a redrive policy), duplicates and refused sends among them: what each
    queue then holds and counts, and the errors (not the ids moto draws at random)."""
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    redrive = {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": 3}
    fifo = {"FifoQueue": "true"}
    urls = {
        name: sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        for name, attributes in {
            "backlog": {},
            "content.fifo": {**fifo, "ContentBasedDeduplication": "true"},
            "explicit.fifo": fifo,
            "kms": {"KmsMasterKeyId": "alias/k"},
            "redriven": {"RedrivePolicy": json.dumps(redrive)},
        }.items()
    }
    errors = []

    def send(queue: str, body: str, **options: Any) -> None:
        try:
            sqs.send_message(QueueUrl=urls.get(queue, queue), MessageBody=body, **options)
        except sqs.exceptions.ClientError as error:
            errors.append(error.response["Error"]["Code"])

    for n in range(30):
        send("backlog", f"b{n}", DelaySeconds=60 if n % 3 else 0)
    sqs.receive_message(QueueUrl=urls["backlog"], MaxNumberOfMessages=5, VisibilityTimeout=60)
    for body in ("same", "same", "other"):
        send("content.fifo", body, MessageGroupId="g")
    send("content.fifo", "no group")
    send("content.fifo", "delayed", MessageGroupId="g", DelaySeconds=5)
    for dedupe, body in (("1", "first"), ("1", "first again"), ("2", "second")):
        send("explicit.fifo", body, MessageGroupId="g", MessageDeduplicationId=dedupe)
    send("explicit.fifo", "no deduplication id", MessageGroupId="g")
    send("kms", "k")
    send("kms", "x" * 300_000)
    send(urls["redriven"] + "-missing", "lost")
    batch = sqs.send_message_batch(
        QueueUrl=urls["redriven"],
        Entries=[{"Id": "a", "MessageBody": "r1"}, {"Id": "b", "MessageBody": "r2"}],
    )
    return {
        "errors": errors,
        "batch": sorted(entry["Id"] for entry in batch["Successful"]),
        "counts": {
            name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=sorted(QUEUE_COUNTS))[
                "Attributes"
            ]
            for name, url in urls.items()
        },
        "bodies": {
            name: sorted(
                m["Body"]
                for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            )
            for name, url in urls.items()
        },
    }


def test_sqs_sends_give_moto_s_own_outcomes(aws: None) -> None:
    # Given sends to every kind of queue, as moto answers them
    with mock_aws():
        moto_s = _queue_sends(boto3.client("sqs"))
    # When the same sends run with the fix on, the queues hold, count and refuse the same
    undo = sqs_sends_count_no_backlog()
    try:
        with mock_aws():
            ours = _queue_sends(boto3.client("sqs"))
    finally:
        undo()
    assert ours == moto_s
    assert moto_s["counts"]["backlog"] == {
        "ApproximateNumberOfMessages": "5",
        "ApproximateNumberOfMessagesDelayed": "20",
        "ApproximateNumberOfMessagesNotVisible": "5",
    }
    assert moto_s["bodies"]["content.fifo"] == ["other", "same"]


@pytest.mark.parametrize("fixed", [False, True])
def test_sqs_sends_count_no_messages_and_read_moto_s_settings(
    aws: None, monkeypatch: pytest.MonkeyPatch, fixed: bool
) -> None:
    # Given moto's queue counts, noted when computed, and the attributes a send reads
    counted: list[str] = []
    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        count = vars(Queue)[name]
        monkeypatch.setattr(
            Queue, name, property(lambda q, c=count, n=name: counted.append(n) or c.fget(q))
        )
    moto_s_attributes = vars(Queue)["attributes"].fget
    read: list[tuple[dict[str, Any], dict[str, Any]]] = []
    add_message = Queue.add_message

    def add_and_read(queue: Queue, message: Message) -> None:
        during = queue.attributes  # as the send reads them
        noted = len(counted)
        read.append((during, moto_s_attributes(queue)))  # and moto's own, not noted
        del counted[noted:]
        add_message(queue, message)

    monkeypatch.setattr(Queue, "add_message", add_and_read)
    undo = sqs_sends_count_no_backlog() if fixed else (lambda: None)
    try:
        with mock_aws():
            _queue_sends(boto3.client("sqs"))
            # When messages are sent to queues holding a backlog
            counted.clear()
            sqs = boto3.client("sqs")
            for queue in ("backlog", "redriven", "kms"):
                url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
                sqs.send_message(QueueUrl=url, MessageBody="more")
            url = sqs.get_queue_url(QueueName="content.fifo")["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody="more", MessageGroupId="g")
    finally:
        undo()
    # Then with the fix no send counted a queue's messages (moto's counts each, three ways)
    assert (counted == []) is fixed
    # and every send read moto's own settings of its queue, only without the counts
    kinds = {"RedrivePolicy", "KmsMasterKeyId", "ContentBasedDeduplication"}
    assert kinds <= {name for _, moto_s in read for name in moto_s}
    for during, moto_s in read:
        assert moto_s.keys() >= QUEUE_COUNTS
        expected = (
            moto_s if not fixed else {k: v for k, v in moto_s.items() if k not in QUEUE_COUNTS}
        )
        assert during == expected


def _updates() -> list[Any]:
    """UpdateItem's answers and errors for valid and invalid expressions, on a fresh table."""
    client = boto3.client("dynamodb")
    _pk_table(client, "u")
    sets = ", ".join(f"#r{n} = :r{n}" for n in range(120))
    many = {
        "UpdateExpression": f"SET {sets}, #m.#k = :m ADD #c :one REMOVE #gone",
        "ExpressionAttributeNames": {
            **{f"#r{n}": f"r{n}" for n in range(120)},
            "#m": "m",
            "#k": "k",
            "#c": "c",
            "#gone": "gone",
        },
        "ExpressionAttributeValues": {
            **{f":r{n}": {"M": {"v": {"N": str(n)}, "s": {"S": "ok"}}} for n in range(120)},
            ":m": {"S": "nested"},
            ":one": {"N": "1"},
        },
    }
    answers: list[Any] = []
    for key, update in [
        (
            "a",
            {
                "UpdateExpression": "SET #m = :m",
                "ExpressionAttributeNames": {"#m": "m"},
                "ExpressionAttributeValues": {":m": {"M": {}}},
            },
        ),
        ("a", many),
        ("a", {**many, "ConditionExpression": "attribute_not_exists(#c)"}),
        (
            "b",
            {
                "UpdateExpression": "SET a = :v, a.b = :v",
                "ExpressionAttributeValues": {":v": {"S": "x"}},
            },
        ),
        ("b", {"UpdateExpression": "SET pk = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}}),
        (
            "b",
            {
                "UpdateExpression": "SET a = :v SET b = :v",
                "ExpressionAttributeValues": {":v": {"S": "x"}},
            },
        ),
        ("b", {"UpdateExpression": "SET a = :missing"}),
        (
            "b",
            {
                "UpdateExpression": "SET l = list_append(if_not_exists(l, :e), :v)",
                "ExpressionAttributeValues": {":e": {"L": []}, ":v": {"L": [{"S": "x"}]}},
            },
        ),
    ]:
        try:
            answer = client.update_item(
                TableName="u", Key={"pk": {"S": key}}, ReturnValues="ALL_NEW", **update
            )
            answers.append(answer["Attributes"])
        except client.exceptions.ClientError as error:
            answers.append(error.response["Error"])
    return answers


def test_update_expressions_copied_cheaply_give_moto_s_own_answers(aws: None) -> None:
    # Given moto's answers to updates valid and not (overlapping paths, a key, two SETs)
    with mock_aws():
        expected = _updates()
    assert sum("Code" in answer for answer in expected) == 5
    # When the runtime copies the expression trees node by node, the answers are the same
    undo = update_expressions_copy_cheaply()
    try:
        with mock_aws():
            assert _updates() == expected
    finally:
        undo()


def test_update_expressions_with_node_types_checked_once_give_moto_s_own_answers(
    aws: None,
) -> None:
    # Given moto's answers to updates valid and not
    with mock_aws():
        expected = _updates()
    # When the runtime checks node types once per type (alone, and with the cheap copies the
    # runtime also makes), the answers and errors are the same
    for fixes in (
        [update_expressions_check_node_types_once],
        [
            update_expressions_copy_cheaply,
            update_expressions_check_node_types_once,
        ],
    ):
        undos = [fix() for fix in fixes]
        try:
            with mock_aws():
                assert _updates() == expected
        finally:
            for undo in reversed(undos):
                undo()


def test_actions_looked_up_once_give_moto_s_own_answers(aws: None) -> None:
    # Given moto's answers to sends and updates
    with mock_aws():
        expected = (_queue_sends(boto3.client("sqs")), _updates())
    # When the runtime keeps each response class's method names and each action's name
    undo = actions_are_looked_up_once()
    try:
        with mock_aws():
            assert (_queue_sends(boto3.client("sqs")), _updates()) == expected
        # Then the names kept are moto's own
        for response_class in (SQSResponse, DynamoHandler):
            names = moto_responses.method_names_from_class(response_class)
            assert names == set(method_names_from_class(response_class))
            assert "send_message" in names or "update_item" in names
    finally:
        undo()


def _tree(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", None) or []:
        yield from _tree(child)


def test_an_update_expression_copied_cheaply_is_a_whole_separate_tree() -> None:
    expression = UpdateExpressionParser.make("SET a.b[1] = :v, c = if_not_exists(c, :z) ADD d :o")
    undo = update_expressions_copy_cheaply()
    try:
        copied = copy.deepcopy(expression)
    finally:
        undo()
    originals, copies = list(_tree(expression)), list(_tree(copied))
    # the same shape, classes and leaves
    assert [type(n) for n in copies] == [type(n) for n in originals]
    leaves = [n for n in originals if not hasattr(n, "children")]
    assert [n for n in copies if not hasattr(n, "children")] == leaves
    # no node shared with the original, and every parent link inside the copy
    nodes = [n for n in copies if hasattr(n, "children")]
    assert not {id(n) for n in nodes} & {id(n) for n in originals}
    inside = {id(n) for n in nodes}
    assert copied.parent is None
    assert all(id(child.parent) in inside for child in nodes[1:])


def test_backends_found_without_the_lock_are_moto_s_and_a_reset_starts_over(aws: None) -> None:
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.sqs.models import sqs_backends

    undo = backends_are_found_without_a_lock()
    try:
        with mock_aws():
            boto3.client("sqs").create_queue(QueueName="kept")
            account = next(iter(dict.keys(sqs_backends)))
            # an existing account's backends are found while another thread holds moto's lock
            found: list[Any] = []
            with backend_lock:
                reader = threading.Thread(target=lambda: found.append(sqs_backends[account]))
                reader.start()
                reader.join(timeout=5)
            assert found and "kept" in found[0]["us-east-1"].queues
            # moto's reset empties what it registered: the account is created afresh after it
            BackendDict.reset()
            assert not dict.__contains__(sqs_backends, account)
            assert sqs_backends[account]["us-east-1"].queues == {}
            assert sqs_backends in BackendDict._instances
    finally:
        undo()


@pytest.fixture
def moto_server(aws: None) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _requests_left_as_garbage(endpoint: str, count: int) -> int:
    """Requests the server answered that are unreachable but still alive: only a full
    collection of the garbage collector frees them (with their bodies)."""
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    sqs.list_queues()  # the app and the client warmed up
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage, to count
    try:
        for _ in range(count):
            sqs.list_queues()
        gc.collect()
        return sum(isinstance(o, werkzeug.Request) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_requests_to_the_embedded_aws_leave_no_garbage_cycles(moto_server: str) -> None:
    # Given moto's server, whose Flask apps run in debug mode, where each of 50 requests is
    # left in a reference cycle
    assert _requests_left_as_garbage(moto_server, 50) == 50

    # When the runtime's fix is on, each request is freed as soon as it is answered
    undo = requests_leave_no_garbage_cycles()
    try:
        assert _requests_left_as_garbage(moto_server, 50) == 0
    finally:
        undo()


def _sized_writes() -> list[Any]:
    """Writes near moto's 405,000-byte item limit, by every kind of action that changes an
    item's size (root and nested SET, ADD, REMOVE, DELETE, list_append, a replaced value),
    with the answers, errors and what each item holds afterwards (moto keeps what an update
    set before it failed)."""
    client = boto3.client("dynamodb")
    _pk_table(client, "s")

    def text(kilobytes: int, mark: str = "x") -> dict[str, str]:
        return {"S": mark * (kilobytes * 1000)}

    answers: list[Any] = []

    def attempt(call: Any, **request: Any) -> None:
        try:
            answer = call(TableName="s", **request)
            answers.append(answer.get("Attributes", "done"))
        except client.exceptions.ClientError as error:
            answers.append(error.response["Error"])

    def update(key: str, expression: str, **values: dict[str, Any]) -> None:
        attempt(
            client.update_item,
            Key={"pk": {"S": key}},
            UpdateExpression=expression,
            ExpressionAttributeValues={f":{name}": value for name, value in values.items()},
            ReturnValues="UPDATED_NEW",
        )

    # new items: just under the limit, and over it
    attempt(client.put_item, Item={"pk": {"S": "a"}, **{f"a{n}": text(100) for n in range(4)}})
    attempt(client.put_item, Item={"pk": {"S": "b"}, **{f"a{n}": text(100) for n in range(5)}})
    # an update of a new item that crosses the limit at its fifth assignment
    update("c", "SET " + ", ".join(f"a{n} = :big" for n in range(5)), big=text(100))
    # a replaced value: moto counts the old one beside the new one
    update("d", "SET x = :v", v=text(100))
    update("d", "SET x = :v", v=text(310))
    update("d", "SET x = :v", v=text(300))
    update("k", "SET x = :v", v=text(200))
    update("k", "SET x = :v, y = :w", v=text(100), w=text(150))  # counted without the old x
    # in place: a nested SET, ADD to a set, then a root SET that crosses only counted after them
    update("e", "SET m = :empty", empty={"M": {}})
    update("e", "SET m.k = :nested, y = :root", nested=text(300), root=text(110))
    update(
        "f",
        "ADD s :three SET y = :root",
        three={"SS": ["1" * 99_000, "2" * 99_000, "3" * 99_000]},
        root=text(110),
    )
    # shrinking in place: a root SET that passes only when the removal is counted
    update("g", "SET r = :v", v=text(300))
    update("g", "REMOVE r SET y = :v", v=text(200))
    update("g", "SET r = :v", v=text(300))
    update("g", "SET z = :v REMOVE y", v=text(200))
    update("h", "SET s = :three", three={"SS": ["1" * 99_000, "2" * 99_000, "3" * 99_000]})
    update("h", "DELETE s :two SET y = :v", two={"SS": ["1" * 99_000, "2" * 99_000]}, v=text(200))
    # a list grown by list_append, replacing itself
    update("i", "SET l = :l", l={"L": [text(150)]})
    update("i", "SET l = list_append(l, :more)", more={"L": [text(150)]})
    update("i", "SET l = list_append(l, :more)", more={"L": [text(150)]})
    # many small attributes, then a number added to at the root (a hundred: the readings
    # store's most per update; moto's own copy of a longer expression's tree recurses past
    # Python's limit when the test's stack is deep, as under xdist)
    update(
        "j",
        "SET " + ", ".join(f"n{n} = :v" for n in range(100)) + " ADD c :one",
        v={"S": "x" * 1500},
        one={"N": "1"},
    )
    update("j", "ADD c :one SET big = :big", one={"N": "2"}, big=text(250))
    for key in "abcdefghijk":
        held = client.get_item(TableName="s", Key={"pk": {"S": key}}, ConsistentRead=True)
        answers.append(
            {name: len(json.dumps(value)) for name, value in held.get("Item", {}).items()}
        )
    return answers


def test_item_sizes_counted_once_per_write_give_moto_s_own_answers(aws: None) -> None:
    # Given moto's answers to writes near the item size limit, by every kind of action
    with mock_aws():
        expected = _sized_writes()
    too_large = [a for a in expected if isinstance(a, dict) and "size" in str(a.get("Message"))]
    assert len(too_large) == 8
    # When the runtime counts an item's size once per write and keeps it up to date, every
    # answer, error and stored item is the same
    undo = item_sizes_are_counted_once_per_write()
    try:
        with mock_aws():
            assert _sized_writes() == expected
    finally:
        undo()


@pytest.mark.parametrize("fixed", [False, True])
def test_an_update_counts_the_item_s_size_once(
    aws: None, monkeypatch: pytest.MonkeyPatch, fixed: bool
) -> None:
    # Given an item of 100 attributes and moto's size of a value, counted when asked
    sized: list[None] = []
    size = DynamoType.size
    monkeypatch.setattr(DynamoType, "size", lambda value: sized.append(None) or size(value))
    undo = item_sizes_are_counted_once_per_write() if fixed else (lambda: None)
    try:
        with mock_aws():
            client = boto3.client("dynamodb")
            _pk_table(client, "t")
            values = {f":v{n}": {"S": str(n)} for n in range(100)}
            sets = ", ".join(f"a{n} = :v{n}" for n in range(100))
            client.update_item(
                TableName="t",
                Key={"pk": {"S": "k"}},
                UpdateExpression=f"SET {sets}",
                ExpressionAttributeValues=values,
            )
            # When 100 more attributes are set in one update
            sized.clear()
            client.update_item(
                TableName="t",
                Key={"pk": {"S": "k"}},
                UpdateExpression=f"SET {sets.replace('a', 'b')}",
                ExpressionAttributeValues=values,
            )
    finally:
        undo()
    # Then with the fix the item's values are sized about once each (moto: every value held,
    # at every assignment)
    assert (len(sized) < 2 * 200) is fixed
    assert not fixed or len(sized) >= 200  # the item counted once, each new value once


def _checked_updates() -> list[Any]:
    """UpdateItem's answers and errors for expressions that repeat or overlap a path, name one
    not given, or repeat a clause, each near the end of a long SET (where moto finds them first)
    and at its start, with what the item holds afterwards."""
    client = boto3.client("dynamodb")
    _pk_table(client, "c")
    long = ", ".join(f"#r{n} = :v" for n in range(60))
    names = {f"#r{n}": f"r{n}" for n in range(60)}
    answers: list[Any] = []
    for expression, extra_names in [
        (f"SET {long}", {}),
        (f"SET {long}, #x = :v, #y = :v", {"#x": "r3", "#y": "r59"}),  # repeated names
        (f"SET #x = :v, {long}", {"#x": "r59"}),
        (f"SET a.b = :v, {long}, a = :v", {}),  # overlapping paths
        (f"SET {long}, a.b = :v, a.b.c = :v, z = :v, z = :v", {}),
        (f"SET {long}, a[1] = :v, a[1] = :v", {}),
        (f"SET {long}, #missing = :v", {}),  # a name not given
        (f"SET {long} SET z = :v", {}),  # two clauses
        (f"ADD n :one SET {long} ADD m :one", {}),
        (f"REMOVE q SET {long} REMOVE p", {}),
        (f"SET {long} REMOVE gone ADD n :one DELETE s :set", {}),
        ("SET #x.k = :v REMOVE gone ADD n :one", {"#x": "r5"}),
    ]:
        used = set(re.findall(r"[#:]\w+", expression))
        try:
            answer = client.update_item(
                TableName="c",
                Key={"pk": {"S": "k"}},
                UpdateExpression=expression,
                ExpressionAttributeNames={
                    name: value
                    for name, value in {**names, **extra_names}.items()
                    if name in used or name == "#missing"
                },
                ExpressionAttributeValues={
                    name: value
                    for name, value in {
                        ":v": {"M": {}},
                        ":one": {"N": "1"},
                        ":set": {"SS": ["s"]},
                    }.items()
                    if name in used
                },
                ReturnValues="UPDATED_NEW",
            )
            answers.append(answer["Attributes"])
        except client.exceptions.ClientError as error:
            answers.append(error.response["Error"])
        except KeyError as error:  # moto's own failure for a name it was not given
            answers.append(repr(error))
    answers.append(client.get_item(TableName="c", Key={"pk": {"S": "k"}}).get("Item"))
    return answers


def test_update_expressions_checked_at_the_root_give_moto_s_own_answers(aws: None) -> None:
    # Given moto's answers to updates that repeat or overlap paths, or repeat clauses
    with mock_aws():
        expected = (_checked_updates(), _updates())
    assert sum("Code" in answer for answer in expected[0] if isinstance(answer, dict)) >= 7
    # When the runtime checks each expression at its root (alone, and with the runtime's other
    # fixes to update expressions), the same answers, errors and paths named in them
    for fixes in (
        [update_expressions_are_checked_at_the_root],
        [
            update_expressions_copy_cheaply,
            update_expressions_check_node_types_once,
            update_expressions_are_checked_at_the_root,
            update_expressions_are_parsed_once,
        ],
    ):
        undos = [fix() for fix in fixes]
        try:
            with mock_aws():
                assert (_checked_updates(), _updates()) == expected
        finally:
            for undo in reversed(undos):
                undo()


@pytest.mark.parametrize("fixed", [False, True])
def test_a_long_update_is_checked_once(
    aws: None, monkeypatch: pytest.MonkeyPatch, fixed: bool
) -> None:
    # Given moto's two checks of an update expression, counted when they run
    checked: list[str] = []
    for validator, name in (
        (ActionCountValidator, "verify_action_counts"),
        (OverlappingPathsValidator, "check_for_overlapping_paths"),
    ):
        check = getattr(validator, name)
        monkeypatch.setattr(
            validator, name, lambda self, node, c=check, n=name: checked.append(n) or c(self, node)
        )
    undo = update_expressions_are_checked_at_the_root() if fixed else (lambda: None)
    try:
        with mock_aws():
            client = boto3.client("dynamodb")
            _pk_table(client, "t")
            client.put_item(TableName="t", Item={"pk": {"S": "k"}})
            # When an existing item is updated with 100 assignments
            client.update_item(
                TableName="t",
                Key={"pk": {"S": "k"}},
                UpdateExpression="SET " + ", ".join(f"a{n} = :v" for n in range(100)),
                ExpressionAttributeValues={":v": {"S": "x"}},
            )
    finally:
        undo()
    # Then with the fix each check runs once, on the whole expression (moto: at every node)
    assert (checked == ["verify_action_counts", "check_for_overlapping_paths"]) is fixed
    assert fixed or len(checked) > 200


def _shape(node: Any, parent: Any = None) -> Any:
    """A tree's classes, leaves and whether each parent link is its parent."""
    if not hasattr(node, "children"):
        return node
    return (
        type(node),
        node.parent is parent,
        [_shape(child, node) for child in node.children or []],
    )


def test_update_expressions_parsed_once_are_shared_unchanged(aws: None) -> None:
    # Given the fix on, moto's answers to the update suite are the same
    with mock_aws():
        expected = _updates()
    undo = update_expressions_are_parsed_once()
    try:
        with mock_aws():
            assert _updates() == expected
        parsed = UpdateExpressionParser.make("SET a = :v, b = if_not_exists(b, :w)")
        # When the same text is parsed again, after updates that used its tree
        with mock_aws():
            client = boto3.client("dynamodb")
            _pk_table(client, "p")
            for key in ("new", "new"):
                client.update_item(
                    TableName="p",
                    Key={"pk": {"S": key}},
                    UpdateExpression="SET a = :v, b = if_not_exists(b, :w)",
                    ExpressionAttributeValues={":v": {"S": "x"}, ":w": {"N": "1"}},
                )
        again = UpdateExpressionParser.make("SET a = :v, b = if_not_exists(b, :w)")
        # and a text that does not parse
        failures = []
        for _ in range(2):
            try:
                UpdateExpressionParser.make("SET a = ")
            except Exception as error:  # moto's parse error, raised each time
                failures.append(type(error).__name__)
    finally:
        undo()
    fresh = UpdateExpressionParser.make("SET a = :v, b = if_not_exists(b, :w)")
    # Then it is the tree parsed the first time, still as moto parses it
    assert again is parsed
    assert fresh is not parsed
    assert _shape(parsed) == _shape(fresh)
    assert len(failures) == 2 and failures[0] == failures[1]
