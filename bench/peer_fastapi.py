"""The original's stack doing the same work as the API benchmark's ceilings, for bench/api.ts:
FastAPI + uvicorn (one process) + aiomysql, the bearer token looked up on every request, then the
route's statements (bench/routes.ts), answered in the same envelope. DATABASE_URL, PORT, DB_POOL_SIZE.
Needs Debian's python3-fastapi, python3-uvicorn and python3-aiomysql."""
import asyncio
import hashlib
import os
from urllib.parse import unquote, urlparse

import aiomysql
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request

url = urlparse(os.environ["DATABASE_URL"])
app = FastAPI()
pool = None


@app.on_event("startup")
async def open_pool():
    global pool
    pool = await aiomysql.create_pool(
        host=url.hostname, port=url.port or 3306, user=unquote(url.username or "root"),
        password=unquote(url.password or ""), db=url.path.lstrip("/"), autocommit=True,
        maxsize=int(os.environ.get("DB_POOL_SIZE", "10")), charset="utf8mb4",
    )


@app.on_event("shutdown")
async def close_pool():
    pool.close()
    await pool.wait_closed()


async def rows(sql, params=()):
    async with pool.acquire() as connection:
        async with connection.cursor(aiomysql.DictCursor) as cursor:
            await cursor.execute(sql, params)
            return await cursor.fetchall()


async def caller(request: Request):
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not bearer:
        raise HTTPException(401, "Missing bearer token")
    digest = hashlib.sha256(bearer.encode()).hexdigest()
    found = await rows(
        "SELECT id, scopes FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > NOW()) LIMIT 1", (digest,))
    if not found:
        raise HTTPException(401, "Invalid, expired or revoked token")
    return found[0]


def ok(data):
    return {"status": "SUCCESS", "message": "OK", "data": data}


@app.get("/healthcheck")
async def healthcheck():
    return {"status": "SUCCESS"}


@app.get("/api/v1/environment/{name}")
async def environment(name: str, _=Depends(caller)):
    found = await rows("SELECT * FROM environments WHERE name = %s LIMIT 1", (name,))
    if not found:
        raise HTTPException(404, "Environment not found")
    return ok(found[0])


@app.get("/api/v1/serve/{name}")
async def serve_overview(name: str, _=Depends(caller)):
    found = await rows("SELECT * FROM serves WHERE name = %s LIMIT 1", (name,))
    if not found:
        raise HTTPException(404, "Serve not found")
    serve = found[0]
    infra, latest, deployed = await asyncio.gather(
        rows("SELECT infra_configs.*, environments.name AS env FROM infra_configs INNER JOIN environments"
             " ON environments.id = infra_configs.environment_id WHERE infra_configs.serve_id = %s"
             " ORDER BY environments.name", (serve["id"],)),
        rows("SELECT * FROM artifacts WHERE serve_id = %s ORDER BY created_at DESC, id DESC LIMIT 5", (serve["id"],)),
        rows("SELECT DISTINCT environments.name FROM deployments INNER JOIN environments ON environments.id ="
             " deployments.environment_id WHERE deployments.serve_id = %s AND deployments.status IN"
             " ('active', 'pending', 'deploying') ORDER BY environments.name", (serve["id"],)),
    )
    return ok({**serve, "infra_configs": infra, "latest_artifacts": latest, "deployed_environments": [row["name"] for row in deployed]})


@app.get("/api/v1/serve")
async def serve_list(_=Depends(caller)):
    items, totals = await asyncio.gather(
        rows("SELECT * FROM serves ORDER BY name LIMIT %s OFFSET %s", (20, 0)),
        rows("SELECT COUNT(*) AS total FROM serves"),
    )
    return ok({"items": items, "total": totals[0]["total"]})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)
