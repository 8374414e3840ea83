"""The embedder: clippings.raw -> clippings.embedded, a stateless consumer group.

Per micro-batch (up to batch_max_events records or batch_max_wait_ms): parse, one pool call
to fetch/decode/preprocess the images, one ONNX Runtime run, one produce loop, wait for the
acks, then store the offsets. Bad records go to clippings.dlq with a reason in the same batch.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from pydantic import ValidationError

from clippings.runtime.onnx_model import OnnxEmbedder, pool
from clippings.services.config import EmbedderSettings, describe
from clippings.services.kafka.dlq import DeadLetters
from clippings.services.errors import RejectedEvent
from clippings.services.ops.health import Health, HealthServer
from clippings.services.embedder.images import ImageLimits, ImagePreparer
from clippings.services.kafka.clients import BrokerWatch, Outbox, make_consumer, make_producer
from clippings.services.ops.logfmt import kv
from clippings.services.ops.metrics import ServiceMetrics
from clippings.services.kafka.runtime import StopSignal, commit_now, records_only, store_offsets, wait_for_topics
from clippings.services.schemas import EmbeddedClipping, KafkaPosition, RawClipping, peek_id, validation_summary

log = logging.getLogger(__name__)


class EmbedderService:
    def __init__(self, settings: EmbedderSettings):
        self.settings = settings
        self.metrics = ServiceMetrics("embedder")
        self.health = Health(self.metrics, settings.liveness_timeout_s)
        for condition in ("model", "broker"):
            self.health.set(condition, False)
        self.stop = StopSignal()
        self.http: HealthServer | None = None
        self.assigned: set[tuple[str, int]] = set()  # partitions of clippings.raw held now

    def run(self) -> None:
        s = self.settings
        log.info(kv("starting", service="embedder") + " " + describe(s))
        self.http = HealthServer(self.health, self.metrics, s.metrics_host, s.metrics_port).start()
        model = OnnxEmbedder(s.model, variant=s.model_variant, providers=s.onnx_providers, intra_op_threads=s.onnx_threads)
        self.metrics.model_info.labels(model.manifest.name, model.version, s.model_variant).set(1)
        self._warm_up(model)
        self.health.set("model", True)
        log.info(kv("model_loaded", model=model.manifest.name, version=model.version,
                    providers=",".join(model.session.get_providers()), metrics_port=self.http.port))
        preparer = ImagePreparer(ImageLimits.from_settings(s), model.preprocess, s.decode_workers)
        watch = BrokerWatch(s.broker_timeout_s)
        consumer = make_consumer(s, watch, self.metrics.set_lag)
        producer = make_producer(s, watch)
        dlq = DeadLetters(s.topic_dlq, "embedder", s.kafka_client_id, self.metrics)
        try:
            wait_for_topics(consumer, [s.topic_raw, s.topic_embedded, s.topic_dlq], watch, s.broker_timeout_s)
            consumer.subscribe([s.topic_raw], on_assign=self._on_assign, on_revoke=self._on_revoke,
                               on_lost=self._on_lost)
            while not self.stop:
                self.health.tick()
                watch.check()
                self.health.set("broker", watch.reachable)
                msgs = consumer.consume(s.batch_max_events, s.batch_max_wait_ms / 1000)
                records = records_only(msgs)
                if records:
                    self._process(records, model, preparer, producer, watch, dlq)
                    store_offsets(consumer, records)
            log.info(kv("draining", service="embedder"))
            commit_now(consumer)
        finally:
            consumer.close()
            producer.flush(10)
            preparer.close()
            self.http.stop()
            log.info(kv("stopped", service="embedder"))

    @staticmethod
    def _warm_up(model: OnnxEmbedder) -> None:
        """One run before taking traffic: the first inference allocates and is many times slower."""
        pixels, _, text_ids, _ = model.prepare([None], ["warm-up"])
        model.run(pixels, text_ids)

    def _on_assign(self, consumer, partitions) -> None:
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        log.info(kv("assigned", partitions=_names(partitions)))

    def _on_revoke(self, consumer, partitions) -> None:
        commit_now(consumer)  # the batch in hand is done: hand over its offsets
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        log.info(kv("revoked", partitions=_names(partitions)))

    def _on_lost(self, consumer, partitions) -> None:
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        log.warning(kv("lost", partitions=_names(partitions)))

    def _process(self, records: list[Message], model: OnnxEmbedder, preparer: ImagePreparer,
                 producer, watch: BrokerWatch, dlq: DeadLetters) -> None:
        s, m = self.settings, self.metrics
        m.count_in(len(records))
        m.batch_size.labels("embedder").observe(len(records))
        outbox = Outbox(producer, watch)

        parsed: list[tuple[Message, RawClipping]] = []
        for msg in records:
            try:
                raw = RawClipping.model_validate_json(msg.value() or b"")
            except ValidationError as exc:
                dlq.send(outbox, msg, "schema", validation_summary(exc), peek_id(msg.value()))
                continue
            if not raw.has_image and not raw.has_text:
                dlq.send(outbox, msg, "empty", "neither an image nor text", raw.id)
                continue
            parsed.append((msg, raw))

        with m.step("decode"):
            images = preparer.prepare([raw for _, raw in parsed])
        kept: list[tuple[Message, RawClipping, np.ndarray | None]] = []
        for (msg, raw), img in zip(parsed, images):
            if isinstance(img, RejectedEvent):
                dlq.send(outbox, msg, img.reason, img.detail, raw.id)
            else:
                kept.append((msg, raw, img))

        if kept:
            with m.step("preprocess"):
                cfg = model.preprocess
                pixels = np.zeros((len(kept), cfg.channels, cfg.image_height, cfg.image_width), np.float32)
                image_present = np.zeros(len(kept), np.float32)
                for i, (_, _, img) in enumerate(kept):
                    if img is not None:
                        pixels[i] = img
                        image_present[i] = 1.0
                # Invisible-only text (zero-width, controls) is no text: the image alone is embedded.
                texts = [raw.text if raw.has_text else "" for _, raw, _ in kept]
                text_ids, text_present = model.tokenizer(texts)  # (N, L), (N,)
            start = time.perf_counter()
            with m.step("inference"):
                image_emb, text_emb = model.run(pixels, text_ids)  # (N, D) each
            m.inference_seconds.observe(time.perf_counter() - start)
            vectors = pool(image_emb, text_emb, image_present, text_present, model.image_weight)  # (N, D)

            with m.step("serialize"):
                now_ms = int(time.time() * 1000)
                produced = 0
                for i, (msg, raw, _) in enumerate(kept):
                    if image_present[i] + text_present[i] == 0:  # text that normalises to nothing
                        dlq.send(outbox, msg, "empty", "text is empty after normalisation and no image", raw.id)
                        continue
                    ts_type, ts = msg.timestamp()
                    event = EmbeddedClipping(
                        id=raw.id, source=raw.source, block=raw.block,
                        model=model.manifest.name, model_version=model.version, dim=vectors.shape[1],
                        vector=EmbeddedClipping.pack(vectors[i]),
                        has_image=bool(image_present[i]), has_text=bool(text_present[i]),
                        origin=KafkaPosition(topic=msg.topic(), partition=msg.partition(), offset=msg.offset()),
                        raw_ts_ms=now_ms if ts_type == TIMESTAMP_NOT_AVAILABLE else ts,
                        embedded_ts_ms=now_ms,
                    )
                    outbox.send(s.topic_embedded, event.to_bytes(), key=raw.block)
                    produced += 1
        else:
            produced = 0
        with m.step("produce"):
            outbox.wait()
        m.count_out(produced)


def _names(partitions) -> str:
    return ",".join(f"{p.topic}/{p.partition}" for p in partitions) or "-"
