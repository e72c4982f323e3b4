"""`coco studio`: a live local web app over the runs folder (app.py: routes; view.py: what the page shows;
jobs.py: runs started, edited and answered from the page; page.html: the page itself, nothing from a CDN).

Built on Starlette and uvicorn, the server stack LangGraph's own API server runs on, with a small page of its
own rather than Gradio or the LangGraph server: the studio's runs must be the CLI's run directories (their
checkpoints.sqlite, so `coco edit` / `coco review` and the studio see each other's work), which LangGraph's
server keeps in its own store; and Gradio (a 31 MB wheel plus FastAPI and friends) would bring a second UI stack
whose components fit a per-round live timeline with editing no better than twenty lines of DOM code.
"""
