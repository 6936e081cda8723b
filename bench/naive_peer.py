#!/usr/bin/env python3
"""The naive peer of Ferry's benchmarks: a confluent-kafka consume -> produce
loop, the way vendor migration scripts copy topics between clusters.

It preserves key, value, headers, timestamp and partition; target topics are
named `<prefix><source topic>` and created (same partition count) when
missing. After every batch it flushes the producer and only then commits the
consumed offsets (at-least-once).

Without --follow it exits once it has copied every partition up to the end
offsets captured at start; with --follow it runs until SIGTERM/SIGINT.
On exit it prints one JSON line: {"records": N, "bytes": N, "version": "..."}.

Run by `ferry-bench` (crates/bench) from a venv with `confluent-kafka`.
"""

import argparse
import json
import re
import signal
import sys

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BATCH = 10_000
STOP = False


def on_signal(_signum, _frame):
    global STOP
    STOP = True


def source_topics(consumer, args):
    metadata = consumer.list_topics(timeout=30)
    if args.pattern:
        pattern = re.compile(args.pattern)
        names = [t for t in metadata.topics if pattern.fullmatch(t)]
    else:
        names = args.topics.split(",")
    partitions = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            sys.exit(f"naive_peer: source topic {name!r} does not exist")
        partitions[name] = len(topic.partitions)
    return partitions


def ensure_target_topics(args, partitions):
    admin = AdminClient({"bootstrap.servers": args.target})
    existing = admin.list_topics(timeout=30).topics
    wanted = [
        NewTopic(args.prefix + name, num_partitions=count, replication_factor=1)
        for name, count in partitions.items()
        if args.prefix + name not in existing
    ]
    for i in range(0, len(wanted), 200):
        futures = admin.create_topics(wanted[i : i + 200], operation_timeout=60)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as e:
                if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    sys.exit(f"naive_peer: cannot create target topic {name!r}: {e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="source bootstrap servers")
    parser.add_argument("--target", required=True, help="target bootstrap servers")
    parser.add_argument("--topics", help="comma-separated source topics")
    parser.add_argument("--pattern", help="regex matched against whole source topic names")
    parser.add_argument("--prefix", required=True, help="target topic = prefix + source topic")
    parser.add_argument("--group", required=True, help="consumer group id")
    parser.add_argument("--follow", action="store_true", help="run until signalled")
    args = parser.parse_args()
    if bool(args.topics) == bool(args.pattern):
        sys.exit("naive_peer: give exactly one of --topics and --pattern")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    consumer = Consumer(
        {
            "bootstrap.servers": args.source,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.target,
            "linger.ms": 5,
            "compression.type": "lz4",
            "enable.idempotence": True,
        }
    )
    partitions = source_topics(consumer, args)
    ensure_target_topics(args, partitions)

    # End offsets captured at start: what "caught up" means without --follow.
    remaining = {}
    if not args.follow:
        for name, count in partitions.items():
            for p in range(count):
                _low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30)
                if high > 0:
                    remaining[(name, p)] = high

    if args.pattern:
        consumer.subscribe(["^" + args.pattern])
    else:
        consumer.subscribe(list(partitions))

    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(err)

    records = 0
    size = 0
    while not STOP and (args.follow or remaining):
        batch = consumer.consume(num_messages=BATCH, timeout=0.5)
        if not batch:
            continue
        for msg in batch:
            if msg.error() is not None:
                sys.exit(f"naive_peer: consume failed: {msg.error()}")
            key, value, headers = msg.key(), msg.value(), msg.headers()
            _kind, timestamp = msg.timestamp()
            while True:
                try:
                    producer.produce(
                        args.prefix + msg.topic(),
                        value=value,
                        key=key,
                        partition=msg.partition(),
                        timestamp=timestamp,
                        headers=headers,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            records += 1
            size += len(key or b"") + len(value or b"")
            size += sum(len(k) + len(v or b"") for k, v in headers or [])
            tp = (msg.topic(), msg.partition())
            end = remaining.get(tp)
            if end is not None and msg.offset() + 1 >= end:
                del remaining[tp]
        producer.flush()
        if failures:
            sys.exit(f"naive_peer: produce failed: {failures[0]}")
        consumer.commit(asynchronous=False)

    producer.flush()
    consumer.close()
    print(json.dumps({"records": records, "bytes": size, "version": confluent_kafka.version()[0]}))


if __name__ == "__main__":
    main()
