"""What the phone bot says on its own (everything else comes from Rasa). 简体中文, short and polite."""

GREETING = "您好，这里是济南市社会保障服务中心智能客服。请问您要咨询什么？转人工服务请按零。"
NO_INPUT = "抱歉，我没有听到您的声音。"
NOT_UNDERSTOOD = "抱歉，我没有听清。"
CONFIRM = "我听到的是：{text}。对吗？对请按一，不对请按二。"
CONFIRM_AGAIN = "好的，请再说一遍。"
TRANSFER = "正在为您转接人工服务，请稍候。"
TRANSFER_NO_INPUT = "您好像一直没有说话，正在为您转接人工服务，请稍候。"
NO_AUDIO_GOODBYE = "抱歉，很长时间没有收到您的声音，本次通话将结束。如需帮助请再次来电，再见。"
BOT_DOWN = "抱歉，系统暂时繁忙，正在为您转接人工服务，请稍候。"
NO_ANSWER = "抱歉，这个问题我暂时回答不了。您可以换个说法，或者按零转人工服务。"
KEYPAD_HINT = {
    "id_number": "您也可以用电话按键输入身份证号码，以井号键结束，字母X请按星号键。",
    "phone_number": "您也可以用电话按键输入手机号码，以井号键结束。",
    "card_number": "您也可以用电话按键输入卡号，以井号键结束。",
    "code": "您也可以用电话按键输入短信验证码，以井号键结束。",
}

# Keypad mode (no speech model): the menu is generated (voice/ivr/menu.py), these are its fixed words.
KEYPAD_GREETING = "您好，这里是济南市社会保障服务中心按键自助服务。"
KEYPAD_OPTION = "{title}，请按{key}"  # one option; options are joined with "；"
KEYPAD_KEYS_TOP = "重听请按九，转人工请按零。"
KEYPAD_KEYS = "返回请按星号键，重听请按九，转人工请按零。"
KEYPAD_AT_TOP = "这里已经是主菜单。"
KEYPAD_INVALID = "您按的键无效，请按提示选择。"
KEYPAD_NEEDS_SPEECH = "这一步需要您说出来，按键无法输入。转人工请按零，返回请按星号键。"
KEYPAD_NO_INPUT = "您还没有按键。"
KEYPAD_TRANSFER_NO_INPUT = "您一直没有按键，正在为您转接人工服务，请稍候。"

# Fixed prompts synthesised at start-up so the first caller does not wait for them.
WARM_UP = [GREETING, NO_INPUT, NOT_UNDERSTOOD, TRANSFER, TRANSFER_NO_INPUT, BOT_DOWN, NO_ANSWER]
KEYPAD_WARM_UP = [KEYPAD_GREETING, KEYPAD_KEYS_TOP, KEYPAD_KEYS, KEYPAD_AT_TOP, KEYPAD_INVALID, KEYPAD_NEEDS_SPEECH,
                  KEYPAD_NO_INPUT, KEYPAD_TRANSFER_NO_INPUT, TRANSFER, BOT_DOWN]

YES_WORDS = ("对", "是", "没错", "正确", "嗯", "好")
NO_WORDS = ("不对", "不是", "错", "不")
DIGIT_GRAMMAR = ("零", "洞", "一", "幺", "二", "两", "三", "四", "五", "六", "七", "八", "九", "叉")
