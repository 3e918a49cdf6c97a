// The public API, as the dashboard's only source. Errors carry the API's own explanation.

export class ApiError extends Error {
  constructor(message, { status = null, code = null, parameter = null, path = "" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.parameter = parameter;
    this.path = path;
  }

  get unreachable() {
    return this.status === null;
  }
}

export function isAbort(error) {
  return error && error.name === "AbortError";
}

export async function getJson(path, params, { signal } = {}) {
  const query = params ? params.toString() : "";
  const url = query ? `${path}?${query}` : path;
  let response;
  try {
    response = await fetch(url, { signal, headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError("The tubewatch API cannot be reached. Is the service running?", { path });
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (isAbort(error)) throw error;
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body === "object" ? body.error : null;
    let message = detail && detail.message ? detail.message : `${path} answered ${response.status} ${response.statusText}`;
    if (response.status === 404 && !(detail && detail.code === "not_found" && path.startsWith("/api/v1/videos/"))) {
      message = `The API has no ${path} endpoint (404).`;
    }
    throw new ApiError(message, {
      status: response.status,
      code: detail ? detail.code : null,
      parameter: detail ? detail.parameter : null,
      path,
    });
  }
  if (body === null || typeof body !== "object") {
    throw new ApiError(`${path} sent an answer that is not JSON.`, { status: response.status, path });
  }
  return { body, servedBy: response.headers.get("X-Served-By") };
}
