"""End to end: a real server seeded by the Python client, the built UI, and Debian's Chromium.

Every wait is on a selector, a URL or a response, never a fixed sleep. Screenshots of each page go to
``test-artifacts/ui/``.
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, Response, expect

from mltrail.client.client import TrackingClient

from .seed import MANY_RUNS, Seed


def runs_url(server: str, experiment_id: str, extra: str = "") -> str:
    return f"{server}/#/runs?e={experiment_id}{extra}"


def row(page: Page, run_id: str):
    return page.locator(f'#runs-grid .vrow[data-run-id="{run_id}"]')


def test_experiments_list_search_create_rename_delete_restore(page: Page, server: str, screenshot) -> None:
    page.goto(f"{server}/")
    table = page.locator("#experiments-table")
    demo = table.locator("tr", has_text="ui-demo")
    expect(demo.locator(".run-count")).to_have_text("12")
    expect(table.locator("tr", has_text="ui-many").locator(".run-count")).to_have_text(str(MANY_RUNS))
    screenshot("experiments")

    page.fill("#experiment-search", "many")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=many"))
    page.fill("#experiment-search", "")
    expect(page).not_to_have_url(re.compile(r"q=many"))

    page.click("#create-experiment")
    page.fill(".dialog input", "created-in-ui")
    page.click(".dialog button[type=submit]")
    expect(page.locator("#experiment-title")).to_have_text("created-in-ui")

    page.goto(f"{server}/#/experiments?q=created-in-ui")
    created = page.locator("#experiments-table tbody tr", has_text="created-in-ui")
    created.get_by_role("button", name="Rename").click()
    page.fill(".dialog input", "renamed-in-ui")
    page.click(".dialog button[type=submit]")
    page.fill("#experiment-search", "renamed-in-ui")
    renamed = page.locator("#experiments-table tbody tr", has_text="renamed-in-ui")
    expect(renamed).to_have_count(1)
    renamed.get_by_role("button", name="Delete").click()
    page.click(".dialog button[type=submit]")
    expect(renamed).to_have_count(0)
    page.select_option("#experiments-page select", "DELETED_ONLY")
    deleted = page.locator("#experiments-table tbody tr", has_text="renamed-in-ui")
    deleted.get_by_role("button", name="Restore").click()
    expect(deleted).to_have_count(0)  # restored: gone from the deleted view


def test_runs_table_filter_sort_and_filter_errors(page: Page, server: str, seeded: Seed, screenshot) -> None:
    page.goto(runs_url(server, seeded.demo_experiment))
    expect(page.locator("#run-count")).to_have_text("12 matching")
    expect(row(page, seeded.runs["baseline"])).to_be_visible()
    screenshot("runs-table")

    page.fill("#run-filter", "params.lr = '0.1' OR params.optimizer = 'sgd'")
    page.press("#run-filter", "Enter")
    expect(page.locator("#run-count")).to_have_text("3 matching")
    expect(page.locator("#runs-grid .vrow[data-run-id]")).to_have_count(3)

    page.fill("#run-filter", "metrics.loss <<< 1")
    page.press("#run-filter", "Enter")
    expect(page.locator("#filter-error")).to_contain_text("metrics.loss")

    page.goto(runs_url(server, seeded.demo_experiment, "&f=params.optimizer%20%3D%20'adam'"))
    expect(page.locator("#run-count")).to_have_text("6 matching")
    page.locator("#runs-grid .vhead .vcell", has_text="loss").click()  # metric columns sort descending first
    expect(page).to_have_url(re.compile(r"s=metric%3Aloss"))
    first = page.locator("#runs-grid .vrow[data-run-id]").first
    expect(first).to_have_attribute("data-run-id", seeded.runs["sweep-lr0.001-s2"])
    page.locator("#runs-grid .vhead .vcell", has_text="loss").click()
    expect(page).to_have_url(re.compile(r"o=asc"))
    expect(first).to_have_attribute("data-run-id", seeded.runs["sweep-lr0.1-s1"])


def test_runs_table_pages_while_scrolling(page: Page, server: str, seeded: Seed) -> None:
    page.goto(runs_url(server, seeded.many_experiment))
    expect(page.locator("#run-count")).to_have_text(f"{MANY_RUNS} matching")
    expect(page.locator("#runs-status")).to_contain_text(f"200 of {MANY_RUNS} runs loaded")
    page.locator("#runs-grid").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(page.locator("#runs-status")).to_contain_text(f"{MANY_RUNS} runs loaded")
    expect(page.locator("#runs-grid .vrow", has_text="many-0000")).to_be_visible()


def test_keyboard_selection_and_open(page: Page, server: str, seeded: Seed) -> None:
    page.goto(runs_url(server, seeded.many_experiment))
    expect(page.locator("#runs-grid .vrow[data-run-id]").first).to_be_visible()
    page.focus("#runs-grid")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("x")
    expect(page.locator("#selection-bar")).to_contain_text("1 selected")
    focused = page.locator("#runs-grid .vrow.focused")
    expect(focused).to_contain_text(f"many-{MANY_RUNS - 2:04d}")
    expect(page).to_have_url(re.compile(r"sel="))
    page.keyboard.press("Enter")
    expect(page.locator("#run-title")).to_have_text(f"many-{MANY_RUNS - 2:04d}")


def test_nested_runs_and_groups(page: Page, server: str, seeded: Seed, screenshot) -> None:
    page.goto(runs_url(server, seeded.demo_experiment, "&nest=1"))
    parent = row(page, seeded.runs["parent"])
    expect(parent.locator(".badge")).to_have_text("2")
    expect(row(page, seeded.runs["child-0"])).to_have_count(0)
    parent.get_by_role("button", name="Show child runs").click()
    expect(row(page, seeded.runs["child-0"])).to_be_visible()
    expect(row(page, seeded.runs["child-1"])).to_be_visible()

    page.goto(runs_url(server, seeded.demo_experiment, "&g=params.lr"))
    group = page.locator("#runs-grid .vrow.group", has_text="params.lr: 0.1")
    expect(group.locator(".badge")).to_have_text("2")
    expect(group).to_contain_text("±")
    screenshot("runs-grouped")
    group.get_by_role("button", name="Expand group").click()
    expect(row(page, seeded.runs["sweep-lr0.1-s1"])).to_be_visible()
    expect(row(page, seeded.runs["sweep-lr0.01-s1"])).to_have_count(0)


def test_run_page_description_and_artifacts(page: Page, server: str, seeded: Seed, screenshot) -> None:
    run_id = seeded.runs["baseline"]
    page.goto(f"{server}/#/run/{run_id}")
    expect(page.locator("#run-title")).to_have_text("baseline")
    overview = page.locator("#run-overview")
    expect(overview).to_contain_text("0123456789abcdef0123456789abcdef01234567")
    description = page.locator("#run-description")
    expect(description.locator("h1")).to_have_text("Baseline")
    expect(description).to_contain_text("<script>window.__xss = 1</script>")  # shown as text, never run
    assert page.evaluate("window.__xss") is None
    expect(description.locator("a")).to_have_count(0)  # javascript: links are not made links
    expect(page.locator("#run-params")).to_contain_text("sgd")
    datasets = page.locator("#run-datasets")
    expect(datasets).to_contain_text("imagenet-mini")
    expect(datasets).to_contain_text("training")
    screenshot("run")

    browser_tree = page.locator("#artifact-browser .tree")
    browser_tree.locator('[data-path="config.json"]').click()
    expect(page.locator(".json-preview")).to_contain_text('"layers": [')
    expect(page).to_have_url(re.compile(r"a=config\.json"))

    browser_tree.locator('[data-path="metrics.csv"]').click()
    expect(page.locator(".csv-preview tbody tr")).to_have_count(3)
    expect(page.locator(".csv-preview thead")).to_contain_text("accuracy")

    browser_tree.locator('[data-path="params.yaml"]').click()
    expect(page.locator(".text-preview")).to_contain_text("optimizer: adam")

    browser_tree.locator('[data-path="plots"]').click()
    browser_tree.locator('[data-path="plots/curve.png"]').click()
    image = page.locator("#artifact-preview img")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('#artifact-preview img')?.naturalWidth === 48")

    browser_tree.locator('[data-path="report.html"]').click()
    frame = page.locator("#artifact-preview iframe")
    expect(frame).to_have_attribute("sandbox", "allow-scripts")
    expect(page.frame_locator("#artifact-preview iframe").locator("#report")).to_have_text("Report")
    page.locator("#run-artifacts").scroll_into_view_if_needed()
    screenshot("artifacts")

    with page.expect_download() as download:
        page.click("#artifact-download")
    assert download.value.suggested_filename == "report.html"


def test_charts_hover_and_zoom_refetch(page: Page, server: str, seeded: Seed, screenshot) -> None:
    sweep = [v for k, v in seeded.runs.items() if k.startswith("sweep")]
    runs = ",".join([*sweep, seeded.runs["long-spiky"]])
    page.goto(runs_url(server, seeded.demo_experiment, f"&tab=charts&sel={runs}&k=loss"))
    card = page.locator('.chart-card[data-metric="loss"]')
    expect(card.locator("h3 .hint")).to_contain_text("min/max sampled")
    canvas = card.locator("canvas")
    expect(canvas).to_be_visible()
    over = card.locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    tip = card.locator(".chart-tip")
    expect(tip.locator("tr")).to_have_count(7)  # every run's value at the hovered step
    screenshot("charts")

    def zoomed(r: Response) -> bool:
        return "metrics/bucketed" in r.url and b'"x_min"' in (r.request.post_data_buffer or b"")

    with page.expect_response(zoomed):
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 20)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40, steps=5)
        page.mouse.up()
    expect(page).to_have_url(re.compile(r"zoom=\d"))
    expect(card.locator("h3 .hint")).not_to_contain_text("sampled")  # the zoomed range is shown at full resolution
    page.click("#reset-zoom")
    expect(page).not_to_have_url(re.compile(r"zoom="))

    page.check("#log-y")
    expect(page).to_have_url(re.compile(r"log=1"))
    page.select_option("#x-axis", "relative")
    expect(page).to_have_url(re.compile(r"x=relative"))
    expect(card.locator("canvas")).to_be_visible()


def test_compare_two_runs(page: Page, server: str, seeded: Seed, screenshot) -> None:
    page.goto(runs_url(server, seeded.demo_experiment))
    for name in ("sweep-lr0.1-s1", "sweep-lr0.01-s2"):
        row(page, seeded.runs[name]).locator("input[type=checkbox]").check()
    expect(page.locator("#selection-bar")).to_contain_text("2 selected")
    page.click("#compare-selected")
    expect(page.locator("#compare-page h1")).to_have_text("Compare 2 runs")
    params = page.locator("#compare-params")
    expect(params.locator('tr[data-param="lr"]')).to_have_class("diff")
    expect(params.locator('tr[data-param="seed"]')).to_have_class("diff")
    expect(params.locator('tr[data-param="optimizer"]')).not_to_have_class("diff")
    page.check("#only-diff")
    expect(params.locator("tbody tr")).to_have_count(2)
    expect(page.locator("#compare-metrics")).to_contain_text("accuracy")
    expect(page.locator("#parallel-coords polyline")).to_have_count(2)
    expect(page.locator("#scatter-plot circle")).to_have_count(2)
    screenshot("compare")
    page.locator("#compare-charts").scroll_into_view_if_needed()
    expect(page.locator('#compare-charts .chart-card[data-metric="loss"] canvas')).to_be_visible()
    screenshot("compare-charts")


def test_theme_follows_system_and_toggles(page: Page, server: str, seeded: Seed, screenshot) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto(runs_url(server, seeded.demo_experiment))
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "dark")  # "system" follows the browser
    page.emulate_media(color_scheme="light")
    expect(html).to_have_attribute("data-theme", "light")
    page.click("#theme-toggle")  # system → light
    expect(page.locator("#theme-toggle")).to_contain_text("light")
    page.click("#theme-toggle")  # light → dark
    expect(html).to_have_attribute("data-theme", "dark")
    expect(row(page, seeded.runs["baseline"])).to_be_visible()
    screenshot("runs-dark")
    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")  # the choice is remembered


def test_running_run_updates_without_reload(page: Page, server: str, seeded: Seed) -> None:
    run_id = seeded.runs["live-run"]
    page.goto(f"{server}/#/run/{run_id}")
    metrics = page.locator("#run-metrics")
    expect(metrics.locator("tbody tr")).to_contain_text("loss")
    expect(page.locator("#run-page .toolbar .status")).to_have_text("RUNNING")
    client = TrackingClient(seeded.root)
    client.log_metric(run_id, "loss", 0.25, int(time.time() * 1000), 1, synchronous=True)
    expect(metrics.locator("tbody tr", has_text="loss")).to_contain_text("0.25", timeout=15_000)
    client.set_terminated(run_id, "FINISHED")
    expect(page.locator("#run-page .toolbar .status")).to_have_text("FINISHED", timeout=30_000)
