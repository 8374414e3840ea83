"""The embedder: clippings.raw -> clippings.embedded, a stateless consumer group.

The embed step of the batch loop (kafka/loop.py): parse, one pool call to fetch, decode and
preprocess the images, the runtime's batch assembly and one ONNX Runtime run (the same
`OnnxEmbedder.assemble`/`run`/`served` as eval and export), one produce loop. Bad records go
to clippings.dlq with a reason in the same batch.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack

import numpy as np
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from pydantic import ValidationError

from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.services.config import EmbedderSettings
from clippings.services.embedder.images import ImageLimits, ImagePreparer
from clippings.services.errors import RejectedEvent
from clippings.services.kafka.clients import BrokerWatch, Outbox
from clippings.services.kafka.dlq import DeadLetters
from clippings.services.kafka.loop import BatchService, Sent, Step
from clippings.services.ops.logfmt import kv
from clippings.services.ops.metrics import ServiceMetrics
from clippings.services.schemas import EmbeddedClipping, KafkaPosition, RawClipping, peek_id, validation_summary

log = logging.getLogger(__name__)

Kept = tuple[Message, RawClipping, np.ndarray | None]  # a record, its clipping, its preprocessed image


class EmbedderService(BatchService):
    stage = "embedder"
    conditions = ("model", "broker")

    def open(self, stack: ExitStack, watch: BrokerWatch) -> "EmbedStep":
        s = self.settings
        model = OnnxEmbedder(s.model, variant=s.model_variant, providers=s.onnx_providers, intra_op_threads=s.onnx_threads)
        self.metrics.model_info.labels(model.manifest.name, model.version, model.variant).set(1)
        _warm_up(model)
        self.health.set("model", True)
        log.info(kv("model_loaded", model=model.manifest.name, version=model.version, variant=model.variant,
                    providers=",".join(model.session.get_providers()), metrics_port=self.http.port))
        preparer = ImagePreparer(ImageLimits.from_settings(s), model.preprocess, s.decode_workers)
        stack.callback(preparer.close)
        dlq = DeadLetters(s.topic_dlq, "embedder", s.kafka_client_id, self.metrics)
        return EmbedStep(s, self.metrics, model, preparer, dlq)


def _warm_up(model: OnnxEmbedder) -> None:
    """One run before taking traffic: the first inference allocates and is many times slower."""
    pixels, _, text_ids, _ = model.prepare([None], ["warm-up"])
    model.run(pixels, text_ids)


class EmbedStep(Step):
    def __init__(self, s: EmbedderSettings, metrics: ServiceMetrics, model: OnnxEmbedder,
                 preparer: ImagePreparer, dlq: DeadLetters):
        self.topic_in, self.topics_out = s.topic_raw, (s.topic_embedded, s.topic_dlq)
        self.metrics, self.model, self.preparer, self.dlq = metrics, model, preparer, dlq

    def process(self, records: list[Message], outbox: Outbox) -> Sent:
        parsed = self._parse(records, outbox)
        with self.metrics.step("decode"):
            images = self.preparer.prepare([raw for _, raw in parsed])
        kept: list[Kept] = []
        for (msg, raw), img in zip(parsed, images):
            if isinstance(img, RejectedEvent):
                self.dlq.send(outbox, msg, img.reason, img.detail, raw.id)
            else:
                kept.append((msg, raw, img))
        return Sent(self._embed(kept, outbox) if kept else 0)

    def _parse(self, records: list[Message], outbox: Outbox) -> list[tuple[Message, RawClipping]]:
        parsed = []
        for msg in records:
            try:
                raw = RawClipping.model_validate_json(msg.value() or b"")
            except ValidationError as exc:
                self.dlq.send(outbox, msg, "schema", validation_summary(exc), peek_id(msg.value()))
                continue
            if not raw.has_image and not raw.has_text:
                self.dlq.send(outbox, msg, "empty", "neither an image nor text", raw.id)
                continue
            parsed.append((msg, raw))
        return parsed

    def _embed(self, kept: list[Kept], outbox: Outbox) -> int:
        m, model = self.metrics, self.model
        with m.step("preprocess"):
            # Invisible-only text (zero-width, controls) is no text: the image alone is embedded.
            texts = [raw.text if raw.has_text else "" for _, raw, _ in kept]
            pixels, image_present, text_ids, text_present = model.assemble([img for _, _, img in kept], texts)
        start = time.perf_counter()
        with m.step("inference"):
            image_emb, text_emb = model.run(pixels, text_ids)  # (N, D) each
        m.inference_seconds.observe(time.perf_counter() - start)
        vectors = model.served(image_emb, text_emb, image_present, text_present, texts)  # (N, served_dim)
        with m.step("serialize"):
            return self._send(kept, vectors, image_present, text_present, outbox)

    def _send(self, kept: list[Kept], vectors: np.ndarray, image_present: np.ndarray,
              text_present: np.ndarray, outbox: Outbox) -> int:
        model, now_ms, produced = self.model, int(time.time() * 1000), 0
        for i, (msg, raw, _) in enumerate(kept):
            if image_present[i] + text_present[i] == 0:  # text that normalises to nothing
                self.dlq.send(outbox, msg, "empty", "text is empty after normalisation and no image", raw.id)
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
            outbox.send(self.topics_out[0], event.to_bytes(), key=raw.block)
            produced += 1
        return produced
