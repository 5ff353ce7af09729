"""The Rasa NLU component that applies common/routing_phrases.py after DIETClassifier (see there why).

No `from __future__ import annotations` here: Rasa validates components by their real type hints.
"""
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from common.routing_phrases import route


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class IntentRules(GraphComponent):
    """Applies `route` to every parsed message (after DIETClassifier, before FallbackClassifier).

    A rule's intent gets confidence 1.0 and becomes the top of the ranking; the classifier's other
    guesses stay in the ranking with confidence 0.
    """

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> GraphComponent:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for m in messages:
            text = m.get(TEXT) or ""
            current = (m.get(INTENT) or {}).get("name")
            forced = route(text, current)
            if forced and forced != current:
                # the rule is certain: the classifier's other guesses drop to 0 (their own confidence is kept
                # aside), so FallbackClassifier's ambiguity check does not undo the rule
                ranking = [{"name": r.get("name"), "confidence": 0.0, "classifier_confidence": r.get("confidence")}
                           for r in (m.get(INTENT_RANKING_KEY) or []) if r.get("name") != forced]
                m.set(INTENT, {"name": forced, "confidence": 1.0}, add_to_output=True)
                m.set(INTENT_RANKING_KEY, [{"name": forced, "confidence": 1.0}, *ranking], add_to_output=True)
        return messages
