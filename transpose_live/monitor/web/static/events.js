"use strict";
// All cameras' events, newest first, filtered by camera and type; new ones arrive over the websocket.
(() => {
  const list = document.getElementById("events");
  const cameraSelect = document.getElementById("camera");
  const typeSelect = document.getElementById("type");
  const more = document.getElementById("more");
  const noEvents = document.getElementById("no-events");
  const PAGE = 50;
  const params = new URLSearchParams(location.search);
  let oldest = null;

  function query(before) {
    const q = new URLSearchParams({ limit: PAGE });
    if (cameraSelect.value) q.set("camera", cameraSelect.value);
    if (typeSelect.value) q.set("type", typeSelect.value);
    if (before !== null) q.set("before", before);
    return "/api/events?" + q;
  }

  async function load(before) {
    const events = await TL.api(query(before));
    if (before === null) list.replaceChildren();
    events.forEach((ev) => list.append(TL.eventItem(ev, true)));
    if (events.length) oldest = events[events.length - 1].id;
    more.hidden = events.length < PAGE;
    noEvents.hidden = list.children.length > 0;
  }

  function filtersChanged() {
    const q = new URLSearchParams();
    if (cameraSelect.value) q.set("camera", cameraSelect.value);
    if (typeSelect.value) q.set("type", typeSelect.value);
    history.replaceState(null, "", "/events" + (q.toString() ? "?" + q : ""));
    oldest = null;
    load(null);
  }

  TL.api("/api/cameras").then((cameras) => {
    for (const camera of cameras) cameraSelect.append(new Option(camera.name, camera.name));
    cameraSelect.value = params.get("camera") || "";
    typeSelect.value = params.get("type") || "";
    load(null);
  });
  cameraSelect.onchange = filtersChanged;
  typeSelect.onchange = filtersChanged;
  more.onclick = () => load(oldest);
  TL.connect((message) => {
    if (message.type !== "event") return;
    const ev = message.event;
    if ((cameraSelect.value && ev.camera !== cameraSelect.value) || (typeSelect.value && ev.type !== typeSelect.value)) return;
    TL.prependLive(list, ev, true);
    noEvents.hidden = true;
  });
})();
