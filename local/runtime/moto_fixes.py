"""Small corrections to moto 5.2.5: models that CDK templates trip over, and its server's costs.

Each returns its undo, so the runtime leaves moto as it found it.
"""

import copy
import json
import threading
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any

import flask.debughelpers as flask_debughelpers
import jsonpath_ng.ext as jsonpath_ext
import moto.core.responses as moto_responses
from moto.core.base_backend import BackendDict
from moto.core.common_models import BaseModel
from moto.core.model_instances import reset_model_data
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import JSONSerializer
from moto.core.utils import camelcase_to_underscores, unix_time, unix_time_millis
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import StreamShard
from moto.dynamodb.models.utilities import bytesize

# the module starts with `# type: ignore`: mypy sees none of its names
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
    DepthFirstTraverser,
    Expression,
    Node,
    UpdateExpression,
    UpdateExpressionAddAction,
    UpdateExpressionAddClause,
    UpdateExpressionDeleteAction,
    UpdateExpressionFunction,
    UpdateExpressionRemoveAction,
    UpdateExpressionRemoveClause,
    UpdateExpressionSetAction,
    UpdateExpressionSetClause,
)
from moto.dynamodb.parsing.executors import SetExecutor, UpdateExpressionExecutor
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator
from moto.events.models import EventBus
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import Message, Queue, SQSBackend


def event_bus_ref_is_its_name() -> Callable[[], None]:
    """``Ref`` of an ``AWS::Events::EventBus`` is its name in CloudFormation.

    moto's ``EventBus`` has no ``physical_resource_id``, so its ``Ref`` resolves to the model
    object itself, and a rule on that bus fails with ``'EventBus' object has no attribute
    'split'``.
    """

    def physical_resource_id(self: EventBus) -> str:
        return str(self.name)

    EventBus.physical_resource_id = property(physical_resource_id)  # type: ignore[attr-defined]

    def undo() -> None:
        del EventBus.physical_resource_id  # type: ignore[attr-defined]

    return undo


def backend_lookup_is_cached() -> Callable[[], None]:
    """Resolve each request's host to its moto backend once, not on every request.

    moto's server looks the backend up per request under one process-wide lock: it lists
    moto's package directory (``os.listdir`` plus an ``isdir`` per entry, about 200) and then
    tries every service's URL patterns. That is deterministic for a host, and it made every
    call of every function and poller queue behind the lock: the largest single cost of the
    local stack's CPU. The answer for a host never changes, so it is kept.
    """
    original = DomainDispatcherApplication.get_backend_for_host
    resolved: dict[str | None, Any] = {}

    @wraps(original)
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        if host not in resolved:
            resolved[host] = original(self, host)
        return resolved[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]

    def undo() -> None:
        DomainDispatcherApplication.get_backend_for_host = original  # type: ignore[method-assign]

    return undo


def sqs_reads_attributes_once() -> Callable[[], None]:
    """Receiving from a queue with a backlog costs the batch, not batch x backlog x 3.

    moto checks each received message's retention by asking for the queue's attributes, which
    computes all of them, counting every message of the queue (visible, delayed, in flight)
    with a clock read per message; ``GetQueueAttributes`` with named attributes computes them
    all again for each name. A receive of 10 from a queue of n messages thus cost about 60 n
    clock reads: a backlog slowed its own draining quadratically, and then the receiver's
    enqueue. The retention period is read from the queue, and named attributes computed once.
    """
    retention_check = SQSBackend.is_message_valid_based_on_retention_period
    get_attributes = SQSBackend.get_queue_attributes

    @wraps(retention_check)
    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        queue = self.get_queue(queue_name)
        retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000  # type: ignore[attr-defined,operator]
        return bool(retain_until > unix_time())

    @wraps(get_attributes)
    def get_queue_attributes(
        self: SQSBackend, queue_name: str, attribute_names: list[str]
    ) -> dict[str, Any]:
        queue = self.get_queue(queue_name)
        known = {"All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES}
        if not attribute_names or "All" in attribute_names or not known.issuperset(attribute_names):
            return get_attributes(self, queue_name, attribute_names)  # moto's answer and errors
        attributes = queue.attributes
        return {
            name: attributes[name] for name in attribute_names if attributes.get(name) is not None
        }

    backend: Any = SQSBackend
    backend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]

    def undo() -> None:
        SQSBackend.is_message_valid_based_on_retention_period = retention_check  # type: ignore[method-assign]
        SQSBackend.get_queue_attributes = get_attributes  # type: ignore[method-assign]

    return undo


def input_paths_are_parsed_once() -> Callable[[], None]:
    """An EventBridge input transformer's JSONPaths are compiled once, not per event.

    moto's ``EventTemplateParser`` calls ``jsonpath_ng.ext.parse`` for every path of every
    event it transforms, and each call builds a new PLY parser (its grammar tables included):
    milliseconds per event on the bus. A compiled path is immutable, so it is kept per text.
    """
    original = jsonpath_ext.parse
    jsonpath_ext.parse = lru_cache(maxsize=1024)(original)

    def undo() -> None:
        jsonpath_ext.parse = original

    return undo


def sqs_reads_the_clock_once() -> Callable[[], None]:
    """A queue's message counts read the clock once per call, not twice per message.

    moto's ``Queue.messages`` and its three ``ApproximateNumberOf*`` counts ask each message
    whether it is visible or delayed, and each answer reads the clock (a datetime round trip).
    ``SendMessage`` computes all queue attributes, so every enqueue walked the whole backlog
    three times at some microseconds per message: with a few thousand messages waiting, the
    receiver's enqueue alone took tens of milliseconds of CPU and the backlog fed on itself.
    The same comparisons against one reading of the clock give the same answers.
    """
    originals = {
        name: vars(Queue)[name]
        for name in (
            "messages",
            "approximate_number_of_messages",
            "approximate_number_of_messages_delayed",
            "approximate_number_of_messages_not_visible",
        )
    }

    def messages(self: Queue) -> list[Message]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def visible_count(self: Queue) -> int:
        return len(messages(self))

    def delayed_count(self: Queue) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible_count(self: Queue) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    patched: Any = Queue
    patched.messages = property(messages)
    patched.approximate_number_of_messages = property(visible_count)
    patched.approximate_number_of_messages_delayed = property(delayed_count)
    patched.approximate_number_of_messages_not_visible = property(not_visible_count)

    def undo() -> None:
        for name, original in originals.items():
            setattr(Queue, name, original)

    return undo


# The queue attributes that count messages: each walks the whole queue.
QUEUE_COUNTS = frozenset(
    {
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    }
)
_sending = threading.local()


def sqs_sends_count_no_backlog() -> Callable[[], None]:
    """``SendMessage`` reads the queue's settings without counting its messages.

    moto's ``send_message`` (and a FIFO queue's ``add_message``) reads one setting,
    ``ContentBasedDeduplication``, from ``Queue.attributes``, which computes every attribute:
    the three message counts walk the whole queue. Every enqueue thus cost time in proportion
    to the backlog, 81% of the receiver's time in a throughput run. While a send runs in a
    thread, that thread's ``Queue.attributes`` are the same settings without the counts (no
    send reads them); ``GetQueueAttributes`` and everything else still get moto's own.
    """
    original_send = SQSBackend.send_message
    original_attributes = vars(Queue)["attributes"]
    # (attribute, field) pairs: moto converts each name with a regex on every read
    settings, fifo_settings, kms_settings = (
        [(name, camelcase_to_underscores(name)) for name in names if name not in QUEUE_COUNTS]
        for names in (Queue.BASE_ATTRIBUTES, Queue.FIFO_ATTRIBUTES, Queue.KMS_ATTRIBUTES)
    )

    @wraps(original_send)
    def send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Message:
        outer = getattr(_sending, "active", False)  # a batch's entries send one by one
        _sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = outer

    def attributes(queue: Queue) -> dict[str, Any]:
        if not getattr(_sending, "active", False):
            return original_attributes.fget(queue)
        names = settings
        if queue.fifo_queue:
            names = names + fifo_settings
        if queue.kms_master_key_id:  # type: ignore[attr-defined]
            names = names + kms_settings
        result = {name: getattr(queue, field) for name, field in names}
        if queue.policy:
            result["Policy"] = queue.policy
        if queue.redrive_policy:
            result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
        return {
            name: str(value).lower() if isinstance(value, bool) else value
            for name, value in result.items()
        }

    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    patched: Any = Queue
    patched.attributes = property(attributes)

    def undo() -> None:
        SQSBackend.send_message = original_send  # type: ignore[method-assign]
        patched.attributes = original_attributes

    return undo


def models_are_not_tracked() -> Callable[[], None]:
    """moto does not keep every model object it ever created.

    Every moto model (a DynamoDB item, including the copies a read returns; an SQS message; a
    log event; a stream record; an S3 key ...) is appended to its class's ``instances_tracked``
    list when created, for moto's dashboard (``/moto-api/data.json``), and never removed. That
    list, not the data, was what grew without bound in a long local run (about 25 KB per
    request in `make soak`), and what kept everything the retention janitor trimmed alive. The
    runtime does not serve that dashboard: new objects are not tracked and the list is emptied.
    """
    original = vars(BaseModel)["__new__"]

    def untracked(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(untracked)  # type: ignore[method-assign]
    reset_model_data()

    def undo() -> None:
        BaseModel.__new__ = original  # type: ignore[method-assign]

    return undo


# Held while a stream record is numbered and appended, read, or trimmed (local/runtime/retention.py)
STREAM_LOCK = threading.RLock()


def stream_records_are_numbered_atomically() -> Callable[[], None]:
    """A DynamoDB stream record's sequence number is its place in the shard, always.

    moto numbers a record by the shard's length, then appends it, with no lock: two writers of
    one table in different threads (the local runtime runs every function in one process; the
    processor writes readings items concurrently) can take the same number. A shard iterator
    reads on from the number after the last record it returned, so after such a pair it reads
    records again, and the lake writer wrote those readings twice. AWS numbers each record once.
    """
    original_add, original_get = StreamShard.add, StreamShard.get

    @wraps(original_add)
    def add(shard: StreamShard, old: Any, new: Any) -> None:
        with STREAM_LOCK:
            original_add(shard, old, new)

    @wraps(original_get)
    def get(shard: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
        with STREAM_LOCK:
            return original_get(shard, start, quantity)

    StreamShard.add = add  # type: ignore[method-assign,assignment]
    StreamShard.get = get  # type: ignore[method-assign,assignment]

    def undo() -> None:
        StreamShard.add = original_add  # type: ignore[method-assign]
        StreamShard.get = original_get  # type: ignore[method-assign]

    return undo


# The item operations: their results are already DynamoDB's wire JSON (attribute values,
# consumed capacity, keys), which moto's serializer rebuilds member by member from the
# service model.
ITEM_OPERATIONS = frozenset(
    {
        "BatchGetItem",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "TransactWriteItems",
        "UpdateItem",
    }
)


def _json_native(value: Any) -> bool:
    """Only what `json.dumps` writes as DynamoDB's JSON would: no None, bytes or datetimes."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_native(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_json_native(item) for item in value)
    return isinstance(value, str | bool | int | float)


def dynamodb_items_are_dumped_as_json() -> Callable[[], None]:
    """Write a DynamoDB item operation's result with `json.dumps`.

    moto 5.2 serializes every response by walking the operation's output shape, value by value
    (an attribute picker, a transformer lookup and a type dispatch per attribute value): 9% of
    the demo's CPU, more than UpdateItem's own work. For the item operations the result is
    already the wire format, so the same JSON comes from `json.dumps`; anything else (errors,
    blobs, dates, other operations) still takes moto's serializer.
    """
    return _answered_as_json(
        lambda result, context: (
            context.service_model.service_name == "dynamodb"
            and context.operation_model.name in ITEM_OPERATIONS
            and isinstance(result, dict)
            and _json_native(result)
        )
    )


def _answered_as_json(
    applies: Callable[[Any, ActionContext], bool],
) -> Callable[[], None]:
    """Answer a result with `json.dumps` where `applies(result, context)`, moto's serializer
    elsewhere; returns the undo."""
    original = ActionResult.execute_result

    @wraps(original)
    def execute_result(self: ActionResult, context: ActionContext) -> Any:
        if applies(self.result, context):
            content_type = "application/x-amz-json-" + context.service_model.metadata.get(
                "jsonVersion", "1.0"
            )
            return 200, {"Content-Type": content_type}, json.dumps(self.result)
        return original(self, context)

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]

    def undo() -> None:
        ActionResult.execute_result = original  # type: ignore[method-assign]

    return undo


# SQS's SendMessage answers a few strings (MessageId, MD5s, a FIFO queue's SequenceNumber):
# the members of its output shape.
SEND_MESSAGE_MEMBERS = frozenset(
    {
        "MD5OfMessageAttributes",
        "MD5OfMessageBody",
        "MD5OfMessageSystemAttributes",
        "MessageId",
        "SequenceNumber",
    }
)


def sqs_sends_are_dumped_as_json() -> Callable[[], None]:
    """Write SQS ``SendMessage``'s answer, in the JSON protocol, with `json.dumps`.

    moto 5.2 serializes it by walking the output shape, looking every member up through its
    attribute picker (`get_possible_keys`): a quarter of the receiver's time in a throughput
    run, more than moto's own ``send_message``. The result is a flat dict of strings, the wire
    JSON itself; anything else (errors, the query protocol's XML, another member or a value
    that is not a string, other operations) still takes moto's serializer.
    """
    return _answered_as_json(
        lambda result, context: (
            context.operation_model.name == "SendMessage"
            and context.service_model.service_name == "sqs"
            and context.serializer_class is JSONSerializer
            and type(result) is dict
            and SEND_MESSAGE_MEMBERS.issuperset(result)
            and all(type(value) is str for value in result.values())
        )
    )


_subclass: dict[tuple[type, tuple[type, ...]], bool] = {}


def _is(kind: type, kinds: tuple[type, ...]) -> bool:
    """`issubclass`, kept per pair (moto's node classes are ABCs: each check is Python code)."""
    answer = _subclass.get((kind, kinds))
    if answer is None:
        answer = _subclass[(kind, kinds)] = issubclass(kind, kinds)
    return answer


_NODE = (Node,)


def update_expressions_copy_cheaply() -> Callable[[], None]:
    """Copy an update expression's syntax tree node by node, and look a traverser's node types
    up once.

    moto validates an `UpdateItem` on a deep copy of the expression's tree (twice for a new
    item), through `copy.deepcopy`'s generic reduce-and-reconstruct of every node, and each of
    its ten validation passes rebuilt its tuple of node types at every node it visited. The
    readings store's updates set up to a hundred readings each: 9% and 3% of a throughput run's
    CPU. The copy made here is the same tree (same classes, attributes, parent links), each
    node copied by a direct call rather than through `copy.deepcopy`'s dispatch (strings,
    numbers and None are kept, as `copy.deepcopy` keeps them; anything else still goes to it).
    """
    original_copy = Node.__dict__.get("__deepcopy__")
    original_types = DepthFirstTraverser.nodes_to_be_processed

    def copied(value: Any, memo: dict[int, Any]) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value  # what `copy.deepcopy` returns for them
        done = memo.get(id(value))
        if done is not None:
            return done
        return __deepcopy__(value, memo) if _is(kind, _NODE) else copy.deepcopy(value, memo)

    def __deepcopy__(self: Node, memo: dict[int, Any]) -> Node:
        twin = self.__class__.__new__(self.__class__)
        memo[id(self)] = twin
        into = twin.__dict__
        for name, value in self.__dict__.items():
            if name == "children" and type(value) is list:
                into[name] = [copied(child, memo) for child in value]
            else:
                into[name] = copied(value, memo)
        return twin

    def nodes_to_be_processed(self: DepthFirstTraverser) -> tuple[type, ...]:
        types = self.__dict__.get("_node_types")
        if types is None:
            types = self.__dict__["_node_types"] = original_types(self)
        return types

    Node.__deepcopy__ = __deepcopy__
    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed

    def undo() -> None:
        if original_copy is None:
            del Node.__deepcopy__
        else:
            Node.__deepcopy__ = original_copy
        DepthFirstTraverser.nodes_to_be_processed = original_types

    return undo


def update_expressions_check_node_types_once() -> Callable[[], None]:
    """Tell an update expression's nodes apart by a type looked up once, not by ABC checks.

    moto's expression nodes are abstract base classes, so every ``isinstance`` against them
    runs ``ABCMeta.__instancecheck__``; its ten validation passes over an update's tree make a
    few of those at every node, and its clause search one per child: a fifth of `UpdateItem`'s
    time with the readings store's hundred-reading updates. Nothing registers virtual
    subclasses of moto's nodes, so whether a value is a node (or one a pass processes) follows
    from its type alone, and the answer per type is kept.
    """
    original_traverse = DepthFirstTraverser.traverse_node_recursively
    original_find = Node.find_clauses
    is_node: dict[type, bool] = {}
    is_nested: dict[type, bool] = {}
    processed: dict[tuple[type, type], bool] = {}

    def traverse_node_recursively(self: DepthFirstTraverser, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        node_kind = is_node.get(kind)
        if node_kind is None:
            node_kind = is_node[kind] = isinstance(node, Node)
        if not node_kind:
            return node
        parent_node = node.parent
        if node.children is not None:
            for i, child_node in enumerate(node.children):
                self.pre_processing_of_child(node, i)
                traverse_node_recursively(self, child_node, i)
        key = (type(self), kind)
        takes = processed.get(key)
        if takes is None:
            takes = processed[key] = isinstance(node, self.nodes_to_be_processed())
        if takes:
            node = self.process(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    def find_clauses(self: Node, clause_types: Any) -> list[Any]:
        clauses: list[Any] = []
        for child in self.children or []:
            kind = type(child)
            if kind in clause_types:
                clauses.append(child)
                continue
            nested = is_nested.get(kind)
            if nested is None:
                nested = is_nested[kind] = isinstance(child, Expression | UpdateExpressionFunction)
            if nested:
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively
    Node.find_clauses = find_clauses

    def undo() -> None:
        DepthFirstTraverser.traverse_node_recursively = original_traverse
        Node.find_clauses = original_find

    return undo


def actions_are_looked_up_once() -> Callable[[], None]:
    """moto finds the method that answers an action once per response class and action name.

    For every request moto lists its response class's functions with `inspect.getmembers`
    (hundreds of attributes, sorted) and converts the action's name with a regex, to find the
    method to call: a tenth of an SQS `SendMessage` in the local runtime. A class's functions
    do not change while it serves, and a name converts the same way each time.
    """
    original_names = moto_responses.method_names_from_class
    original_convert = moto_responses.camelcase_to_underscores
    names_of: dict[type, frozenset[str]] = {}

    def method_names_from_class(clazz: type) -> frozenset[str]:
        names = names_of.get(clazz)
        if names is None:
            names = names_of[clazz] = frozenset(original_names(clazz))
        return names

    moto_responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]
    moto_responses.camelcase_to_underscores = lru_cache(maxsize=4096)(original_convert)

    def undo() -> None:
        moto_responses.method_names_from_class = original_names
        moto_responses.camelcase_to_underscores = original_convert

    return undo


def backends_are_found_without_a_lock() -> Callable[[], None]:
    """Look up an account's backends without moto's process-wide lock once they exist.

    Every model access (`sqs_backends[account]`, `lambda_backends[account]`, IAM's "account
    visited" mark on every request) took moto's global lock, copied the dict's keys to a list
    and searched the list of all backend dicts with a custom `__eq__`, to create the account's
    backends the first time. With calls answered in their callers' threads, the HTTP front's
    threads spent a quarter of their time waiting for that lock. Once an account is in the
    dict, it was created and registered under the lock (moto's `reset` empties the dicts it
    registered, so a reset account takes the locked path again).
    """
    original = BackendDict._create_account_specific_backend

    @wraps(original)
    def create_once(self: BackendDict[Any], account_id: str) -> None:
        if dict.__contains__(self, account_id):
            return
        original(self, account_id)

    BackendDict._create_account_specific_backend = create_once  # type: ignore[method-assign]

    def undo() -> None:
        BackendDict._create_account_specific_backend = original  # type: ignore[method-assign]

    return undo


def requests_leave_no_garbage_cycles() -> Callable[[], None]:
    """A request to the embedded AWS is freed when it is answered, not at the next full GC.

    moto's server runs its Flask apps in debug mode, and in debug mode Flask replaces each
    request's ``files`` with a new class made for that request, whose method closes over the
    request: a reference cycle holding the request, its environ and its body. Only a full
    collection frees it, and a process holding millions of long-lived objects (moto's, the
    functions' libraries) runs one rarely: in `make soak` these were most of what was
    allocated and not yet freed after warm-up, and the process's memory grew by the minute.
    The helper only words an error for multipart form fields, which no AWS API sends.
    """
    original = flask_debughelpers.attach_enctype_error_multidict

    def leave_files_as_they_are(request: Any) -> None:
        return None

    flask_debughelpers.attach_enctype_error_multidict = leave_files_as_they_are

    def undo() -> None:
        flask_debughelpers.attach_enctype_error_multidict = original

    return undo


# What moto's `LimitedSizeDict` refuses: an item over this many bytes, counted its way
ITEM_SIZE_LIMIT = 405_000
_sizing = threading.local()


class _RunningSize:
    """One item's size (moto's count of its keys and values) while one operation writes it."""

    def __init__(self, attributes: LimitedSizeDict | None = None) -> None:
        self.attributes = attributes  # None: the first one written in scope (a new item's)
        self.total: int | None = None  # None: not known, count it again


def _size_of(part: Any) -> int:
    """One key or value of an item, as `LimitedSizeDict` counts it."""
    return part.size() if type(part) is DynamoType else bytesize(str(part))


def item_sizes_are_counted_once_per_write() -> Callable[[], None]:
    """An item's size is counted once per `UpdateItem` or new item, not once per attribute.

    moto's item (`LimitedSizeDict`) refuses an attribute that takes it over 405,000 bytes,
    and to know, counts the size of every key and value it holds each time one is set (a
    recursive walk that builds a copy of every map value on the way). An update that sets n
    attributes of an item of m thus cost n x m: with the readings store's hundred-reading
    updates of items that keep growing, most of an `UpdateItem`'s CPU. While an update
    expression executes, or a new item is built, the item's size is counted once and then kept
    up to date by each attribute set at its root (the value it replaces subtracted, the new
    one added), the same sum moto makes. Any other action (a nested path, ADD, REMOVE,
    DELETE) may change a value in place, so the size is counted afresh before the next set.
    The check and its error are moto's own comparison of the same numbers.
    """
    original_setitem = LimitedSizeDict.__setitem__
    original_init = Item.__init__
    original_execute = UpdateExpressionExecutor.execute

    def __setitem__(self: LimitedSizeDict, key: str, value: Any) -> None:
        running: _RunningSize | None = getattr(_sizing, "running", None)
        if running is None:
            return original_setitem(self, key, value)
        if running.attributes is None:
            running.attributes = self
        elif running.attributes is not self:
            return original_setitem(self, key, value)
        current = running.total
        if current is None:
            current = sum(_size_of(key) + _size_of(held) for key, held in self.items())
        added = bytesize(key) + _size_of(value)
        if current + added > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        replaced = _size_of(key) + _size_of(dict.__getitem__(self, key)) if key in self else 0
        dict.__setitem__(self, key, value)
        running.total = current + added - replaced

    def sized_while(write: Callable[[], None], attributes: LimitedSizeDict | None = None) -> None:
        outer = getattr(_sizing, "running", None)
        _sizing.running = _RunningSize(attributes)
        try:
            write()
        finally:
            _sizing.running = outer

    @wraps(original_init)
    def __init__(self: Item, *args: Any, **kwargs: Any) -> None:
        sized_while(lambda: original_init(self, *args, **kwargs))

    @wraps(original_execute)
    def execute(self: UpdateExpressionExecutor, node: Node | None = None) -> None:
        if node is not None:  # an action, or moto's walk through the actions
            return _execute_keeping_size(self, node)
        sized_while(lambda: _execute_keeping_size(self, self.update_ast), self.item.attrs)

    def _execute_keeping_size(self: UpdateExpressionExecutor, node: Node) -> None:
        node_executor = self.get_specific_execution(node)
        if node_executor is None:
            for child in node.children:
                self.execute(child)
            return
        node_executor(node, self.expression_attribute_names).execute(self.item)
        at_root = node_executor is SetExecutor and len(node.children[0].children) == 1
        running: _RunningSize | None = getattr(_sizing, "running", None)
        if running is not None and not at_root:
            running.total = None

    patched: Any = LimitedSizeDict
    patched.__setitem__ = __setitem__
    Item.__init__ = __init__  # type: ignore[method-assign]
    UpdateExpressionExecutor.execute = execute  # type: ignore[method-assign]

    def undo() -> None:
        patched.__setitem__ = original_setitem
        Item.__init__ = original_init  # type: ignore[method-assign]
        UpdateExpressionExecutor.execute = original_execute  # type: ignore[method-assign]

    return undo


def _linked_count(node: Any, kinds: tuple[type, ...]) -> int | None:
    """Nodes of `kinds` in the tree under `node` (itself included); None if a node's parent
    link is not the node whose child it is."""
    count = 1 if _is(type(node), kinds) else 0
    for child in node.children or ():
        if _is(type(child), _NODE):
            below = _linked_count(child, kinds) if child.parent is node else None
            if below is None:
                return None
            count += below
    return count


def update_expressions_are_checked_at_the_root() -> Callable[[], None]:
    """Check an update expression's action counts and overlapping paths once, on the whole
    expression, rather than again at every node that holds part of it.

    moto's `ActionCountValidator` and `OverlappingPathsValidator` process every node of the
    expression's root type, and a `SET` of n assignments is a chain of n nested nodes of that
    type: each collects the actions under it (`find_clauses`) and compares their paths pairwise
    (`find_duplicates`, `find_path_overlaps`), so an update of n assignments cost n^2 node
    visits and about n^3 / 3 path comparisons. Both checks can only fail on the actions they
    collect (too many clauses, two paths that overlap or repeat, an unknown name), and a part of
    the expression collects a subset of what the whole collects. So when every clause of the
    tree is among what the root collects and the root passes, every part passes, and moto's
    walk would return the same tree unchanged (it puts each processed node back where its
    parent link says it is: where it already is, when every link is its parent's). Otherwise
    moto's own walk runs, and fails where and as moto's does.
    """
    checks: list[tuple[type[DepthFirstTraverser], str, tuple[type, ...]]] = [
        (
            ActionCountValidator,
            "verify_action_counts",
            (UpdateExpressionAddClause, UpdateExpressionRemoveClause, UpdateExpressionSetClause),
        ),
        (
            OverlappingPathsValidator,
            "check_for_overlapping_paths",
            (
                UpdateExpressionSetAction,
                UpdateExpressionAddAction,
                UpdateExpressionRemoveAction,
                UpdateExpressionDeleteAction,
            ),
        ),
    ]
    originals = {validator: validator.traverse for validator, _, _ in checks}

    def checked_at_the_root(
        original: Callable[[DepthFirstTraverser, Any], Any], check: str, clauses: tuple[type, ...]
    ) -> Callable[[DepthFirstTraverser, Any], Any]:
        @wraps(original)
        def traverse(self: DepthFirstTraverser, node: Any) -> Any:
            if (
                isinstance(node, UpdateExpression)
                and node.parent is None
                and len(node.find_clauses(list(clauses))) == _linked_count(node, clauses)
                and _passes(lambda: getattr(self, check)(node))
            ):
                return node
            return original(self, node)

        return traverse

    for validator, check, clauses in checks:
        validator.traverse = checked_at_the_root(originals[validator], check, clauses)

    def undo() -> None:
        for validator, original in originals.items():
            validator.traverse = original

    return undo


def _passes(check: Callable[[], Any]) -> bool:
    try:
        check()
    except Exception:  # moto's own walk will fail with it, where moto's does
        return False
    return True


def update_expressions_are_parsed_once() -> Callable[[], None]:
    """Parse each distinct update expression once, not twice per `UpdateItem`.

    moto parses an `UpdateItem`'s expression in its request handler (to list the names and
    values it uses) and again in its backend (to validate and execute it): a tokenizer and a
    recursive-descent parser over every assignment, each time. The readings store sends the
    same few expression texts again and again (its placeholders are numbered, the values
    differ). Neither reader changes the tree (the handler lists clauses, the validator works
    on its own deep copy), so the tree parsed from a text is kept and shared; a text that
    fails to parse raises each time, as in moto.
    """
    original = UpdateExpressionParser.__dict__["make"]
    parse = lru_cache(maxsize=256)(original.__func__)

    def make(cls: type, expression_str: str) -> Any:
        if cls is not UpdateExpressionParser or type(expression_str) is not str:
            return original.__func__(cls, expression_str)
        return parse(cls, expression_str)

    UpdateExpressionParser.make = classmethod(make)

    def undo() -> None:
        UpdateExpressionParser.make = original

    return undo
