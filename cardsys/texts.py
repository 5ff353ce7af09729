"""Citizen-facing wording for card states, application progress and loss reports (from docs facts 21–46).

Time limits that are not confirmed for Jinan (【待核】 in the domain facts) are worded as
"一般" or referred to 12333 rather than stated as a promise.
"""
from __future__ import annotations

from cardsys.models import CardState as S

# what each state means for the citizen, one sentence
STATE_TEXT: dict[str, str] = {
    S.APPLIED.value: "申请已经受理，正在等待制卡。",
    S.MAKING.value: "社保卡正在制作中。",
    S.SHIPPED.value: "卡已经做好，正在寄送到领卡网点。",
    S.READY.value: "卡已经到了领卡网点，可以去领取了。",
    S.COLLECTED.value: "卡已经领取，启用后就可以正常使用。",
    S.ACTIVE.value: "卡的状态正常，可以正常使用。",
    S.TEMP_LOSS.value: "卡已经临时挂失，暂时不能使用。",
    S.FORMAL_LOSS.value: "卡已经正式挂失，原卡作废，需要补办新卡。",
    S.CANCELLED.value: "卡已经注销，不能再使用。",
    S.LOCKED.value: "卡已经锁定，暂时不能使用社保功能。",
}

PROGRESS_PATH: tuple[str, ...] = (S.APPLIED.value, S.MAKING.value, S.SHIPPED.value, S.READY.value, S.COLLECTED.value)

EXPECTED: dict[str, str] = {
    S.APPLIED.value: "批量制卡一般需要15到30个工作日，做好后会送到您选的网点。",
    S.MAKING.value: "批量制卡一般需要15到30个工作日，做好后会送到您选的网点。",
    S.SHIPPED.value: "卡到网点后就可以领取，可以过几个工作日再查一次。",
    S.READY.value: "现在就可以去领取。",
}

WHAT_TO_BRING: tuple[str, ...] = ("本人有效身份证件（原件）",)

NEXT_STEP: dict[str, str] = {
    S.APPLIED.value: "不用做什么，等制卡完成就行。",
    S.MAKING.value: "不用做什么，卡到网点后就可以领取。",
    S.SHIPPED.value: "卡到网点后，带上本人有效身份证件去领取。",
    S.READY.value: "请带上本人有效身份证件，到{outlet}领取。领卡后记得及时修改初始密码。",
    S.COLLECTED.value: "如果还没启用，请到服务网点或线上渠道启用社保功能；金融功能要带身份证件和卡到合作银行网点激活。",
    S.ACTIVE.value: "卡可以正常使用。",
    S.TEMP_LOSS.value: "找回了卡可以办解挂；确定找不回，请带本人有效身份证件办正式挂失和补卡。",
    S.FORMAL_LOSS.value: "请带本人有效身份证件到社保卡服务网点申请补卡，补卡流程和新申领一样。",
    S.CANCELLED.value: "如需重新申领，请带本人有效身份证件到社保卡服务网点办理。",
    S.LOCKED.value: "请带本人有效身份证件和卡到社保卡服务网点解锁。",
}

LOSS_ALLOWED: frozenset[str] = frozenset({S.ACTIVE.value, S.READY.value, S.COLLECTED.value})

LOSS_REFUSED: dict[str, str] = {
    S.FORMAL_LOSS.value: "这张卡已经正式挂失了，不用再挂失。原卡已作废，请带本人有效身份证件到社保卡服务网点补卡。",
    S.CANCELLED.value: "这张卡已经注销了，不能挂失。如需新卡，请带本人有效身份证件到社保卡服务网点申领。",
    S.LOCKED.value: "这张卡处于锁定状态，不能在这里挂失。请转人工，或带本人有效身份证件到社保卡服务网点办理。",
    S.APPLIED.value: "您的卡还在办理中，还没有交到您手里，不需要挂失。",
    S.MAKING.value: "您的卡还在制作中，还没有交到您手里，不需要挂失。",
    S.SHIPPED.value: "您的卡正在寄往网点，还没有交到您手里，不需要挂失。",
}


def loss_next_steps(bank: str) -> tuple[str, ...]:
    """What happens after a temporary loss report (facts 24–30)."""
    return (
        "这次挂失的是社保卡的社保功能。卡上的银行账户，请同时拨打" + (bank or "服务银行") + "的客服电话挂失。",
        "临时挂失有一定的有效期，过期没有办理正式挂失会自动解挂，济南的具体期限以12333的答复为准。",
        "如果找回了卡，在申请补卡之前可以带身份证件和卡办理解挂。",
        "确定找不回的，请带本人有效身份证件到社保卡服务网点办理正式挂失和补卡；正式挂失后不能撤销。",
    )


VERIFY_MISMATCH = "您提供的信息和登记的信息不一致，请核对后再试一次。"
VERIFY_LOCKED = "核验没有通过的次数太多了，为了保护您的信息，这次不能继续自助核验。可以转人工客服，或带本人有效身份证件到社保卡服务网点办理。"
VERIFY_SOURCE_SLOW_DOWN = "最近从您这里核验没通过的次数比较多，为了保护信息安全，请{minutes}分钟后再试；着急的话可以转人工客服。"
VERIFY_SLOW_DOWN = "这个身份证号最近核验没通过的次数比较多，为了保护信息安全，请{minutes}分钟后再试；着急的话可以转人工客服。"
VERIFY_OK = "身份核验通过。"
CODE_SENT = "如果您提供的信息和登记的一致，验证码已经发到您登记的手机上，{minutes}分钟内有效。请说出或输入6位验证码。"
CODE_WRONG = "验证码不对或者已经过期，请再试一次，也可以重新获取验证码。"
CODE_UNAVAILABLE = "现在不能发送短信验证码，请改用登记手机号的后四位核验。"
KEYPAD_CODE_UNAVAILABLE = "现在发不了短信验证码，按键方式暂时不能核验身份。"
CODE_TOO_SOON = "验证码刚刚发过，请稍等一分钟再重新获取。"
LAST4_INVALID = "手机号后四位应该是4位数字，请再说一遍。"
NAME_MISSING = "请告诉我持卡人的姓名。"
NO_CARD = "没有查到您名下的社保卡记录。如有疑问，可以转人工客服或拨打12333。"
CHANGE_CODE_SMS = "【济南社保】您正在办理社保卡临时挂失，验证码{code}，{minutes}分钟内有效。工作人员不会向您索要验证码；如非本人操作，请勿告诉他人。"
CHANGE_CODE_SENT = "为确认是您本人办理，验证码已经发到您登记的尾号{last4}的手机上，{minutes}分钟内有效。请输入或说出6位验证码（说“取消”可退出）。"
CHANGE_CODE_WRONG = "验证码不对，请核对短信后再输入一次。"
CHANGE_CODE_GONE = "验证码已经失效，这次挂失没有办理。您可以重新说“挂失社保卡”再办一次，或者说“转人工”。"
CHANGE_CODE_UNAVAILABLE = "现在发不了短信验证码，挂失需要验证码确认，暂时不能在这里办理。请转人工，或拨打 12333、到社保卡服务银行网点办理挂失。"
