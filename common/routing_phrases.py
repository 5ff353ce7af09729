"""Deterministic routing rules applied after the intent classifier (bot.nlu.intent_rules.IntentRules in config.yml),
and by the web app and the voice gateway when the bot cannot open a hand-off itself (asks_for_a_person).

A hotline must never keep a citizen who asks for a person, complains or reports wrongdoing away
from a person, and must never start a card transaction for a card *problem*. The classifier learns
these from examples, but a missed case costs too much; these phrase rules make them certain:
- asking for a person in any form (转人工, 找真人, 帮我接一下…窗口, 让领导接电话) -> request_human;
- complaints, 举报, distress and "you are useless" -> complain (a person, complaints first in the queue);
- a card problem predicted as a loss report (解挂, 被家人挂失, 找到了, 挂失后…) -> ask_question.
The rules only raise the intent to confidence 1.0 and keep the classifier's ranking below it.
Plain regular expressions (no Rasa import): the Rasa component is bot/nlu/intent_rules.py; the action
server's tests and benchmarks use `route` directly; the web app and the gateway use `asks_for_a_person` so that
"转人工" reaches a person even when the action server (whose action opens hand-offs) is down.
"""
from __future__ import annotations

import re

_NOT_CONNECT = r"(?<![直对连迎承衔])"  # 直接/对接/连接… are not "put me through"
HANDOFF = re.compile(
    r"转.{0,2}(人工|仁工|人攻|真人|坐席|客服)|^人工(?!.{0,4}(时间|几点|电话|号码))|要人工|人工(客服|服务|坐席)(?!.{0,4}(时间|几点|电话|号码))|(找|要|换)(个|一个)?(真人|活人|工作人员|客服|接线员|话务员)"
    r"|真人|接线员|话务员|坐席" + "|" + _NOT_CONNECT + r"接(一下|个|到)?.{0,10}(窗口|科室|科|处室|部门|领导|专家)"
    r"|让.{0,6}(领导|工作人员|人).{0,2}接(电话|一下)|(给|跟)(我|俺)(回|打)(个)?电话|找(你们)?(领导|负责人|主任|科长)"
    r"|不(想|要)(跟|和)?(机器人|机器)(说|聊|讲)|别(跟|和)(我|俺)(机器人|机器)|人共|zhuan ?ren ?gong|接入人工|有没有(活人|人工)"
    r"|(找|叫|派|安排|换)(个|一个|位)(人|懂行|管事|负责)|(找|叫|派|安排|换)(个|一个|位)?(管事|负责人|同志|工作人员|懂行的)"
    r"|转.{0,8}(科|窗口|那边|部门)|回(个)?电话|回过来|直接通话|跟(工作)?人(员)?说上话|叫来|找人(给|帮)(我|俺)"
    r"|找人(处理|核查|说道|查|协调|管)|谁(来)?管管|帮帮(我|俺)|需要有人|有人(帮|管)(我|俺)")
COMPLAIN = re.compile(
    r"投诉|头诉|举报|告(你们|他们|状)|态度(太|很|真|极|特别)?(差|恶劣|不好|蛮横)|答非所问|一点(用|作用)(都|也)?没有|没(有)?人管"
    r"|不想活|活不下去|活着没意思|寻死|自杀|跳楼|跳下去|跳河|上访|政府门口|走投无路|没办法了|真没法了|救命|求求|急急|哭了"
    r"|我要反映|往上反映|(给|要)(我|俺)?(个)?说法|做主|看不懂|听不懂|说不明白|跟没说一样|问东答西|废话|智障|恁笨|真笨|理解错了"
    r"|(问|说)的不是这个|换个人|没人回复|没人处理")
CARD_PROBLEM = re.compile(
    r"解挂|解除挂失|取消挂失|撤销挂失|(找到|找着|找回|寻回)了|被.{0,6}挂(失|了)|挂失.{0,8}(怎么|如何|咋)(解|取消|恢复|撤)"
    r"|挂失(要|收|花)(钱|费)|挂失(以)?后|挂失了.{0,10}(还|能|怎么|咋)|(锁|冻)(住|了).{0,6}(怎么|咋|如何)")
TRANSACTION_INTENTS = {"report_card_loss"}


def route(text: str, intent: str | None) -> str | None:
    """The intent a rule imposes on this message, or None to keep the classifier's."""
    if HANDOFF.search(text):
        return "request_human"
    if COMPLAIN.search(text):
        return "complain"
    if intent in TRANSACTION_INTENTS and CARD_PROBLEM.search(text):
        return "ask_question"
    return None




def asks_for_a_person(text: str) -> str | None:
    """"request_human" or "complain" when the message asks for a person by the rules above, else None."""
    kind = route(text, None)
    return kind if kind in ("request_human", "complain") else None
