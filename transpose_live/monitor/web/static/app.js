"use strict";
// What the three pages share: the API, the one websocket, how a camera state and an event are shown.
// Every URL is built on location.origin: a page opened as http://user:password@host/ must not copy the
// credentials into the requests it makes (browsers refuse those); the browser adds them by itself.
const TL = (() => {
  const url = (path) => location.origin + path;

  async function api(path) {
    const response = await fetch(url(path), { cache: "no-store" });
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    return response.json();
  }

  // One websocket per page; it comes back a second after it drops (a server restart, a phone's Wi-Fi).
  function connect(onMessage) {
    const link = document.getElementById("link");
    function open() {
      const socket = new WebSocket(url("/ws").replace(/^http/, "ws"));
      socket.onopen = () => { link.classList.add("up"); link.title = "live updates: connected"; };
      socket.onclose = () => {
        link.classList.remove("up");
        link.title = "live updates: reconnecting";
        setTimeout(open, 1000);
      };
      socket.onmessage = (message) => onMessage(JSON.parse(message.data));
    }
    open();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;   // text, never HTML
    return node;
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const cameraPath = (name) => "/api/cameras/" + encodeURIComponent(name);

  function showState(node, state) {
    node.textContent = state;
    node.className = "state state-" + state;
  }

  const WORDS = {
    person_appeared: "Person appeared", person_left: "Person left", person_down: "Person down",
    person_up: "Person up again", stream_lost: "Stream lost", stream_back: "Stream back",
    stream_failed: "Stream failed",
  };

  function when(iso) {
    const moment = new Date(iso);
    const today = new Date().toDateString() === moment.toDateString();
    return today ? moment.toLocaleTimeString() : moment.toLocaleString();
  }

  function eventWords(ev) {
    let words = WORDS[ev.type] || ev.type;
    if (ev.track_id !== null && ev.track_id !== undefined) words += ` (person ${ev.track_id})`;
    const record = ev.record || {};
    if (record.reason) words += `: ${record.reason}`;
    if (record.down_s !== undefined) words += ` after ${record.down_s} s`;
    return words;
  }

  // A clip is cut on demand: fetched first, so that "not recorded" or "still recording" can be said.
  async function playClip(ev, box, button) {
    button.disabled = true;
    button.textContent = "Cutting the clip…";
    try {
      const response = await fetch(url(ev.clip));
      if (!response.ok) {
        let detail = response.statusText;
        try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
        box.replaceChildren(el("p", "muted clip-note", "No clip: " + detail));
        return;
      }
      const video = el("video");
      video.controls = true;
      video.playsInline = true;
      video.src = URL.createObjectURL(await response.blob());
      box.replaceChildren(video);
      video.play().catch(() => { /* autoplay refused: the controls are there */ });
    } catch (error) {
      box.replaceChildren(el("p", "muted clip-note", "No clip: " + error.message));
    }
  }

  function eventItem(ev, withCamera) {
    const item = el("li", "event event-" + ev.type);
    if (ev.id !== null) item.dataset.id = ev.id;
    item.dataset.type = ev.type;
    item.dataset.camera = ev.camera;
    item.dataset.epoch = ev.epoch;
    const picture = el("div", "thumb");
    if (ev.snapshot) {
      const link = el("a");
      link.href = url(ev.snapshot);
      const img = el("img");
      img.loading = "lazy";
      img.alt = "snapshot";
      img.src = url(ev.snapshot);
      link.append(img);
      picture.append(link);
    } else {
      picture.append(el("span", "muted", "no snapshot"));
    }
    const text = el("div", "what");
    text.append(el("strong", null, eventWords(ev)));
    const meta = el("div", "muted");
    if (withCamera) {
      const camera = el("a", null, ev.camera);
      camera.href = "/camera/" + encodeURIComponent(ev.camera);
      meta.append(camera, " · ");
    }
    meta.append(el("time", null, when(ev.time)));
    text.append(meta);
    const box = el("div", "clip");
    if (ev.clip) {
      const button = el("button", null, "Clip");
      button.type = "button";
      button.onclick = () => playClip(ev, box, button);
      box.append(button);
    } else if (ev.id !== null) {
      box.append(el("span", "muted", "not recorded"));
    }
    text.append(box);
    item.append(picture, text);
    return item;
  }

  // New events coming over the websocket: marked with the moment they reached the page (measurements).
  function prependLive(list, ev, withCamera) {
    const item = eventItem(ev, withCamera);
    item.dataset.seen = Date.now() / 1000;
    list.prepend(item);
    while (list.children.length > 500) list.lastElementChild.remove();
    return item;
  }

  return { url, api, connect, el, plural, cameraPath, showState, eventItem, eventWords, prependLive, when };
})();
