"""The landing page's bytes: one static ``index.html`` with inline CSS and JS, no asset.

The page must work wherever the tree is: behind ``server.py`` at any host and port,
from a copy on a USB stick opened as ``file://``, in a browser with no network.  So
nothing in it names a host: the pip.conf / uv.toml snippets are filled in by the
page's own script from ``location`` (the folder the page was loaded from), and every
link is relative.

A full mirror lists hundreds of thousands of projects, so the page never holds one
row of HTML per project: the projects travel as compact columns (one string per
column, values joined by newlines or commas, about 35 bytes a project) inside a
``<script type="application/json">`` block, and the script builds only the rows of
the current page of matches (PAGE_ROWS at a time) for what the filter box holds.
Names and versions are normalized (``[a-z0-9-]`` and PEP 440's canonical text),
never holding a newline or a comma; ``<`` is escaped in the JSON all the same, so no
value can close the script element.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

PAGE_ROWS = 100
UPDATED_META = "morgan-like:updated"


@dataclass(frozen=True)
class ProjectRow:
    """One project as the page shows it (tree/pagesummary.py makes it).  Slotted: a
    full mirror's writer keeps one per project it writes."""

    __slots__ = ("name", "newest", "releases", "files", "size")
    name: str
    newest: str  # "" when no file name could be read
    releases: int
    files: int
    size: int


@dataclass(frozen=True)
class EnvColumn:
    """One env's view: its totals and, per project of the page, its versions."""

    name: str
    projects: int
    files: int
    size: int
    versions: dict[str, str]  # project -> versions, newest first, joined by " "


@dataclass(frozen=True)
class LandingData:
    rows: Sequence[ProjectRow]  # sorted by name
    envs: Sequence[EnvColumn]
    updated: str  # UTC, "YYYY-MM-DDTHH:MM:SSZ"


def human_size(size: int) -> str:
    """1536 -> "1.5 KiB" (the script's humanSize says the same)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _columns(data: LandingData) -> str:
    rows = data.rows
    doc = {
        "count": len(rows),
        "names": "\n".join(r.name for r in rows),
        "newest": "\n".join(r.newest for r in rows),
        "releases": ",".join(str(r.releases) for r in rows),
        "files": ",".join(str(r.files) for r in rows),
        "sizes": ",".join(str(r.size) for r in rows),
        "envs": [
            {"name": e.name, "versions": "\n".join(e.versions.get(r.name, "") for r in rows)}
            for e in data.envs
        ],
        "page": PAGE_ROWS,
    }
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _env_table(envs: Sequence[EnvColumn]) -> str:
    if not envs:
        return ""
    lines = [
        "<h2>Environments</h2>",
        "<p>Each env's view lists only what that target resolved.</p>",
        '<table id="envs"><thead><tr><th>Env</th><th class="n">Projects</th>'
        '<th class="n">Files</th><th class="n">Size</th><th>Index</th></tr></thead><tbody>',
    ]
    for e in envs:
        name = html.escape(e.name)
        lines.append(
            f'<tr><td>{name}</td><td class="n">{e.projects}</td><td class="n">{e.files}</td>'
            f'<td class="n">{human_size(e.size)}</td>'
            f'<td><a href="envs/{name}/simple/">envs/{name}/simple/</a></td></tr>'
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _index_options(envs: Sequence[EnvColumn]) -> str:
    options = ['<option value="">all files (simple/)</option>']
    for e in envs:
        name = html.escape(e.name)
        options.append(f'<option value="{name}">env {name} (envs/{name}/simple/)</option>')
    return "".join(options)


def render_landing(data: LandingData) -> bytes:
    """The page's bytes: the same data always gives the same bytes."""
    files = sum(r.files for r in data.rows)
    size = sum(r.size for r in data.rows)
    env_heads = "".join(f"<th>{html.escape(e.name)}</th>" for e in data.envs)
    text = (
        _TEMPLATE.replace("@UPDATED@", html.escape(data.updated))
        .replace("@SUMMARY@", f"{len(data.rows)} projects, {files} files, {human_size(size)}")
        .replace("@ENVTABLE@", _env_table(data.envs))
        .replace("@OPTIONS@", _index_options(data.envs))
        .replace("@ENVHEADS@", env_heads)
        .replace("@SCRIPT@", _SCRIPT)
        .replace("@DATA@", _columns(data))  # last: no value is read as a placeholder
    )
    return text.encode("utf-8")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="morgan-like">
<meta name="@UPDATED_META@" content="@UPDATED@">
<title>Python package index</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;
max-width:72em;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .4em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;
border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f4}
td.n,th.n{text-align:right;white-space:nowrap}
pre{background:#f6f8fa;border:1px solid #ddd;padding:.6em;overflow:auto;margin:.3em 0}
input[type=search]{font:inherit;padding:.3em .5em;width:22em;max-width:100%}
select,button{font:inherit}.muted{color:#666}.snip{display:grid;gap:0 1.5em;
grid-template-columns:repeat(auto-fit,minmax(22em,1fr))}
#pager{margin:.6em 0}
</style>
</head>
<body>
<h1>Python package index</h1>
<p id="summary">@SUMMARY@; updated <time id="updated" datetime="@UPDATED@">@UPDATED@</time></p>
@ENVTABLE@
<h2>Install from it</h2>
<p><label>Index: <select id="index">@OPTIONS@</select></label>
<span class="muted" id="where">(the URLs below are made for where this page was opened)</span></p>
<div class="snip">
<div><h3>pip.conf</h3><pre id="pipconf">[global]
index-url = http://HOST:8080/simple/</pre></div>
<div><h3>uv.toml</h3><pre id="uvtoml">[[index]]
url = "http://HOST:8080/simple/"
default = true</pre></div>
</div>
<h3>Command line</h3>
<pre id="cmdline">pip install --index-url http://HOST:8080/simple/ PROJECT</pre>
<h2>Projects</h2>
<p><input id="filter" type="search" placeholder="Filter by name" autocomplete="off"
 aria-label="Filter projects by name"> <span id="count" class="muted"></span></p>
<noscript><p>Without JavaScript: the project list is <a href="simple/">simple/</a>.</p></noscript>
<table id="projects"><thead><tr><th>Project</th><th>Newest</th><th class="n">Releases</th>
@ENVHEADS@<th class="n">Files</th><th class="n">Size</th></tr></thead><tbody></tbody></table>
<div id="pager"><button id="prev" type="button">Previous</button>
<span id="pageinfo"></span> <button id="next" type="button">Next</button></div>
<script type="application/json" id="data">@DATA@</script>
<script>@SCRIPT@</script>
</body>
</html>
""".replace("@UPDATED_META@", UPDATED_META)

# ES5 only, no library: any browser the restricted side has.
_SCRIPT = r"""
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var d = JSON.parse($("data").textContent);
  var n = d.count;
  var split = function (s, sep) { return n ? s.split(sep) : []; };
  var names = split(d.names, "\n"), newest = split(d.newest, "\n");
  var releases = split(d.releases, ","), files = split(d.files, ",");
  var sizes = split(d.sizes, ",");
  var envs = d.envs.map(function (e) { return {name: e.name, v: split(e.versions, "\n")}; });
  var file = location.protocol === "file:";
  var here = location.href.split("#")[0].split("?")[0];
  var base = here.slice(0, here.lastIndexOf("/") + 1);
  var page = 0, matches = [];

  function humanSize(b) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return i ? b.toFixed(1) + " " + units[i] : b + " B";
  }
  function envIndex() {
    var want = $("index").value;
    for (var i = 0; i < envs.length; i++) { if (envs[i].name === want) return i; }
    return -1;
  }
  function indexPath() {
    var want = $("index").value;
    return want ? "envs/" + want + "/simple/" : "simple/";
  }
  function snippets() {
    var url = base + indexPath();
    var host = location.hostname, trusted = location.protocol === "http:";
    $("pipconf").textContent = "[global]\nindex-url = " + url +
      (trusted ? "\ntrusted-host = " + host : "");
    $("uvtoml").textContent = "[[index]]\nurl = \"" + url + "\"\ndefault = true";
    $("cmdline").textContent = "pip install --index-url " + url +
      (trusted ? " --trusted-host " + host : "") + " PROJECT\n" +
      "uv pip install --index-url " + url + " PROJECT";
    $("where").textContent = file
      ? "(file:// URLs of this copy of the tree: pip and uv read it as a local index)"
      : "(URLs of the server this page came from)";
  }
  function normalize(s) { return s.trim().toLowerCase().replace(/[-_.]+/g, "-"); }
  function filter() {
    var q = normalize($("filter").value), e = envIndex();
    matches = [];
    for (var i = 0; i < n; i++) {
      if (e >= 0 && !envs[e].v[i]) continue;
      if (!q || names[i].indexOf(q) >= 0) matches.push(i);
    }
    page = 0;
    show();
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function show() {
    var size = d.page, pages = Math.max(1, Math.ceil(matches.length / size));
    if (page >= pages) page = pages - 1;
    var body = document.createElement("tbody"), e = envIndex();
    var start = page * size, end = Math.min(matches.length, start + size);
    for (var k = start; k < end; k++) {
      var i = matches[k], tr = document.createElement("tr");
      var a = document.createElement("a");
      a.textContent = names[i];
      a.href = (e >= 0 ? "envs/" + envs[e].name + "/simple/" : "simple/") + names[i] +
        (file ? "/index.html" : "/");
      cell(tr, "").appendChild(a);
      cell(tr, newest[i]);
      cell(tr, releases[i], "n");
      for (var j = 0; j < envs.length; j++) cell(tr, envs[j].v[i] || "\u2013");
      cell(tr, files[i], "n");
      cell(tr, humanSize(+sizes[i]), "n");
      body.appendChild(tr);
    }
    var table = $("projects");
    table.replaceChild(body, table.tBodies[0]);
    $("count").textContent = matches.length === n
      ? n + " projects"
      : matches.length + " of " + n + " projects match";
    $("pageinfo").textContent = matches.length
      ? "rows " + (start + 1) + "\u2013" + end + " of " + matches.length + " (page " +
        (page + 1) + " of " + pages + ")"
      : "no project matches";
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
    $("pager").hidden = pages < 2;
  }
  var updated = new Date($("updated").getAttribute("datetime"));
  if (!isNaN(updated)) {
    $("updated").textContent = updated.toLocaleString() + " (" + $("updated").textContent + ")";
  }
  $("filter").addEventListener("input", filter);
  $("index").addEventListener("change", function () { snippets(); filter(); });
  $("prev").addEventListener("click", function () { page--; show(); });
  $("next").addEventListener("click", function () { page++; show(); });
  snippets();
  filter();
})();
"""
