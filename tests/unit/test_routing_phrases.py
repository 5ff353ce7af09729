"""Phrase rules that make hand-offs, complaints and card problems certain (common/routing_phrases.py)."""
import pytest

from common.routing_phrases import route


@pytest.mark.parametrize("text", [
    "转人工", "人工", "给俺转个人工中不中", "转仁工", "我要找真人", "帮我接一下社保卡窗口", "给我接医保科",
    "让你们领导接电话", "能不能给我回个电话", "叫个工作人员来", "别跟我机器人说了", "有没有活人",
    "帮我转到养老那边的窗口", "zhuan ren gong",
])
def test_every_way_of_asking_for_a_person(text):
    assert route(text, "ask_question") == "request_human"


@pytest.mark.parametrize("text", [
    "问了好几次没人管我要投诉", "我要举报单位", "举报有人冒领养老金", "窗口那个人态度太差了", "你这答非所问",
    "我真的走投无路了", "再不解决我就跳楼", "你们机器人一点用都没有", "我要头诉",
])
def test_complaints_reports_and_distress_reach_a_person(text):
    assert route(text, "ask_question") == "complain"


@pytest.mark.parametrize("text", [
    "卡被家人挂失了怎么解", "社保卡挂失了又找到了咋办", "怎么解挂", "挂失以后还能用吗", "密码锁了怎么办",
])
def test_a_card_problem_is_a_question_not_a_loss_report(text):
    assert route(text, "report_card_loss") == "ask_question"


@pytest.mark.parametrize("text", ["我的社保卡丢了帮我挂失", "快给俺把卡挂失了", "社保卡被偷了赶紧挂上"])
def test_a_real_loss_report_stays_a_loss_report(text):
    assert route(text, "report_card_loss") is None


@pytest.mark.parametrize("text", [
    "人工服务时间是几点", "社保中心电话多少", "直接去窗口办可以吗", "哪个窗口办社保卡", "社保卡丢了咋办",
    "灵活就业咋交养老", "失业金能领几个月", "电子社保卡怎么申领",
])
def test_ordinary_questions_are_left_to_the_classifier(text):
    assert route(text, "ask_question") is None
