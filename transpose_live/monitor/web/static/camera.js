"use strict";
// One camera: its MJPEG stream (with the attention overlay on request), figures, and its events.
(() => {
  const name = decodeURIComponent(location.pathname.split("/")[2] || "");
  document.title = name + " · transpose-live";
  document.getElementById("name").textContent = name;
  const live = document.getElementById("live");
  const noFrame = document.getElementById("no-frame");
  const toggle = document.getElementById("attention");
  const list = document.getElementById("events");
  const noEvents = document.getElementById("no-events");

  // The overlay is asked for by the stream itself: while this page shows mjpeg?attention=1 the model
  // computes the maps; closing the page or unticking ends that stream, and with it the cost.
  function play() {
    live.src = TL.url(TL.cameraPath(name) + "/mjpeg" + (toggle.checked ? "?attention=1" : ""));
  }
  // A stream left open would keep costing (and keep the overlay on): end it when the page is hidden or left
  // (a phone's screen off, another tab, the back/forward cache), start it again when the page is back.
  function stop() { live.src = "data:,"; }
  live.onload = () => { noFrame.hidden = true; };
  toggle.onchange = play;
  window.addEventListener("pagehide", stop);
  window.addEventListener("pageshow", (event) => { if (event.persisted) play(); });
  document.addEventListener("visibilitychange", () => (document.hidden ? stop() : play()));

  function update(camera) {
    if (camera.name !== name) return;
    TL.showState(document.getElementById("state"), camera.state);
    document.body.dataset.state = camera.state;
    document.getElementById("fps").textContent = camera.fps.toFixed(1) + " fps";
    document.getElementById("persons").textContent = TL.plural(camera.persons, "person");
    document.getElementById("latency").textContent = camera.latency_p50_ms === null ? "–"
      : `${Math.round(camera.latency_p50_ms)} / ${Math.round(camera.latency_p95_ms)} ms (p50 / p95)`;
    document.getElementById("reconnects").textContent = TL.plural(camera.reconnects, "reconnect");
    if (camera.size) noFrame.hidden = true;
  }

  TL.api(TL.cameraPath(name)).then(update).then(play).catch((error) => {
    noFrame.textContent = error.message;
  });
  TL.api("/api/events?limit=100&camera=" + encodeURIComponent(name)).then((events) => {
    events.forEach((ev) => list.append(TL.eventItem(ev, false)));
    noEvents.hidden = events.length > 0;
  });
  TL.connect((message) => {
    if (message.type === "cameras") message.cameras.forEach(update);
    else if (message.type === "camera") update(message.camera);
    else if (message.type === "event" && message.event.camera === name) {
      TL.prependLive(list, message.event, false);
      noEvents.hidden = true;
    }
  });
})();
