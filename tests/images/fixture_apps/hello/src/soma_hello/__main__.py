"""``python -m soma_hello``: the image's command, serving on the port uvicorn is given in the environment."""
import os

import uvicorn

if __name__ == "__main__":
    uvicorn.run("soma_hello:app", host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
