"""What matplotlib accepts, read from the installed matplotlib by introspection (no table to keep up to date).

The host's matplotlib may be newer than the sandbox's; a keyword that exists in either is never touched
because only names the host's matplotlib does not know at all are candidates (removals are handled by the
error-driven repair).
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass

# tick_params keys (matplotlib.axis.Axis._translate_tick_params) and savefig keywords handled by backends
_EXTRA_KNOWN = """size width color tickdir pad labelsize labelcolor labelfontfamily zorder gridOn tick1On tick2On label1On
    label2On length direction left bottom right top labelleft labelbottom labelright labeltop labelrotation
    grid_agg_filter grid_alpha grid_animated grid_antialiased grid_clip_box grid_clip_on grid_clip_path
    grid_color grid_dash_capstyle grid_dash_joinstyle grid_dashes grid_data grid_drawstyle grid_figure
    grid_fillstyle grid_gapcolor grid_gid grid_label grid_linestyle grid_linewidth grid_marker grid_markeredgecolor
    grid_markeredgewidth grid_markerfacecolor grid_markerfacecoloralt grid_markersize grid_markevery
    grid_mouseover grid_path_effects grid_picker grid_pickradius grid_rasterized grid_sketch_params grid_snap
    grid_solid_capstyle grid_solid_joinstyle grid_transform grid_url grid_visible grid_xdata grid_ydata grid_zorder
    grid_ls grid_lw grid_c colors which axis reset dpi format metadata bbox_inches pad_inches facecolor edgecolor
    backend orientation papertype transparent bbox_extra_artists pil_kwargs quality optimize progressive
    projection polar sharex sharey label data"""
EXTRA_KNOWN = frozenset(_EXTRA_KNOWN.split())


_DOC_PARAM = re.compile(r"^\s{0,12}\**([A-Za-z_]\w*(?:\s*,\s*\**[A-Za-z_]\w*)*)\s*:(?:\s|$)")


@dataclass(frozen=True)
class Target:
    """The keyword parameters of a function, or of all the same-named methods of a few classes together."""

    name: str
    params: frozenset[str]
    varkw: bool

    def accepts(self, kwarg: str) -> bool:
        return kwarg in self.params or (self.varkw and kwarg in _artist_props())

    def candidates(self) -> frozenset[str]:
        return self.params | (_artist_props() if self.varkw else frozenset())


def _params(fn: object) -> tuple[set[str], bool] | None:
    try:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    names = {
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    }
    varkw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    return names, varkw


def _classes(kind: str) -> list[type]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.projections.polar import PolarAxes
    from mpl_toolkits.mplot3d import Axes3D

    return {"figure": [Figure, SubFigure], "axes": [Axes, Axes3D, PolarAxes]}[kind]


@functools.cache
def lookup(kind: str, attr: str) -> Target | None:
    """``lookup("axes", "plot")``: what ``ax.plot`` accepts (Axes, Axes3D and PolarAxes together)."""
    if attr.startswith("_"):
        return None
    if kind == "pyplot":
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fns = [getattr(plt, attr, None)]
    else:
        fns = [getattr(cls, attr, None) for cls in _classes(kind)]
    params: set[str] = set()
    varkw = False
    found = False
    for fn in fns:
        if not callable(fn) or inspect.isclass(fn):
            continue
        read = _params(fn)
        if read is None:
            return None  # a signature we cannot read: never touch its calls
        params |= read[0]
        varkw = varkw or read[1]
        found = True
    return Target(f"{kind}.{attr}", frozenset(params), varkw) if found else None


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    todo = [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in out:
                out.add(sub)
                todo.append(sub)
    return out


@functools.cache
def _artist_props() -> frozenset[str]:
    """Every ``set_*`` property of every Artist subclass, with aliases (lw, ls, fc, ec, ...)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot  # noqa: F401  (imports the artist modules)
    import matplotlib.table  # noqa: F401
    import mpl_toolkits.mplot3d  # noqa: F401
    from matplotlib.artist import Artist

    props: set[str] = set()
    for cls in {Artist, *_all_subclasses(Artist)}:
        props |= {name[4:] for name in dir(cls) if name.startswith("set_")}
        for aliases in getattr(cls, "_alias_map", {}).values():
            props |= set(aliases)
    return frozenset(props)


@functools.cache
def _known() -> frozenset[str]:
    """Every keyword name matplotlib knows somewhere: artist properties and constructor / sink parameters."""
    import matplotlib.pyplot as plt
    from matplotlib import colorbar, contour, gridspec, legend, text
    from matplotlib.artist import Artist
    from matplotlib.backend_bases import FigureCanvasBase

    names = set(_artist_props()) | EXTRA_KNOWN
    sinks: list[object] = [
        legend.Legend.__init__,
        colorbar.Colorbar.__init__,
        colorbar.make_axes,
        colorbar.make_axes_gridspec,
        gridspec.GridSpec.__init__,
        FigureCanvasBase.print_figure,
        text.Annotation.__init__,
        contour.ContourLabeler.clabel,
    ]
    sinks += [cls.__init__ for cls in {Artist, *_all_subclasses(Artist)}]
    sinks += [
        getattr(plt, n) for n in dir(plt) if not n.startswith("_") and inspect.isfunction(getattr(plt, n))
    ]
    for kind in ("figure", "axes"):
        for cls in _classes(kind):
            sinks += [
                getattr(cls, n) for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))
            ]
    for fn in sinks:
        read = _params(fn)
        if read:
            names |= read[0]
        for line in (getattr(fn, "__doc__", None) or "").splitlines():  # documented **kwargs: error_kw...
            match = _DOC_PARAM.match(line)
            if match:
                names |= {n.strip() for n in match.group(1).split(",")}
    return frozenset(names)


def known_anywhere(kwarg: str) -> bool:
    return kwarg in _known()
