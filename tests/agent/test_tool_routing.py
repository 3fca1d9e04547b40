"""A session offers the tools its task calls for, and says which and why."""

from deskloop.tools.routing import ToolOffer, route_task

FAMILIES = ["screen", "browser", "followup", "routines", "sql", "files", "graph",
            "observer", "preferences", "speech", "browser_profile", "permissions"]
APPS = ["GTK+ Widget Factory", "gtk3-widget-factory", "Mousepad", "mousepad", "GTK+ Demo",
        "gtk3-demo"]


def test_an_app_task_gets_the_screen_and_says_which_app() -> None:
    routing = route_task("Select the radio button named Page 2 in the widget factory",
                         FAMILIES, app_names=APPS)
    assert routing.families == ("screen",)
    assert routing.reasons["screen"] == "the task names an app: GTK+ Widget Factory"
    assert "screen (the task names an app: GTK+ Widget Factory)" in routing.describe()
    assert "more_tools" in routing.describe()


def test_a_files_task_gets_the_files_tools_and_says_why() -> None:
    routing = route_task("Find the invoices in my Downloads folder", FAMILIES, app_names=APPS)
    assert routing.families == ("files",)
    assert routing.reasons["files"] == "the task says 'invoices'"


def test_a_tab_in_an_app_is_not_a_browser_tab() -> None:
    in_app = route_task("Open the tab named page 2 in gtk3-widget-factory", FAMILIES,
                        app_names=APPS)
    assert in_app.families == ("screen",)
    web = route_task("Open example.org and read the page", FAMILIES, app_names=APPS)
    assert web.families == ("browser",)
    assert web.reasons["browser"] == "the task has a web address"


def test_schedules_memory_and_mcp_servers_are_chosen_by_their_words() -> None:
    routing = route_task(
        "Every morning at 8, remember who is in my team and tell me the time in Tokyo",
        FAMILIES, app_names=APPS, mcp_servers={"time": "time get_current_time Get the time"},
    )
    assert "routines" in routing.families and "graph" in routing.families
    assert "mcp:time" in routing.families
    assert routing.reasons["routines"] == "the task says 'at 8'"


def test_nothing_recognised_gets_the_screen_and_a_way_to_ask_for_more() -> None:
    routing = route_task("hello there", FAMILIES, app_names=APPS)
    assert routing.families == ("screen",)
    assert routing.reasons["screen"] == "nothing else recognised: the screen"
    offer = ToolOffer({"screen": ["click"], "files": ["search_files"]}, routing)
    assert offer.offers("click") and not offer.offers("search_files")
    assert offer.offers("finish")  # tools of no family are always offered
    assert offer.add("files") == ["search_files"]
    assert offer.offers("search_files")
    assert offer.not_offered_families() == []
