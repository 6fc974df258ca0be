// Security keys and passkeys (WebAuthn) for the forms a template marks up this way:
//
//   <form method="post" action="…" data-webauthn="create|get|conditional"
//         data-options-url="…" data-msg-unavailable="…" data-msg-cancelled="…"
//         data-msg-failed="…" data-msg-waiting="…">          (waiting: optional)
//     {% csrf_token %}
//     <input type="hidden" name="credential">
//     <button type="submit" data-webauthn-start hidden>…</button>
//     <p data-webauthn-unavailable>…</p>                       (optional)
//     <p data-webauthn-status role="alert"></p>
//   </form>
//
// A press on the start button (or Enter in the form) POSTs the CSRF token, form-encoded, to
// the options URL; the JSON answer is the options for navigator.credentials.create()
// ("create") or .get() ("get"); the credential the browser gives back is written as JSON
// into `credential` and the form is submitted. "conditional" (passkey autofill, on the
// sign-in form whose e-mail field says autocomplete="username webauthn") asks for a
// credential as soon as the page loads, without a press, and submits the form when the
// person picks a passkey; its start button, if any, asks in a dialog instead.
//
// Every text a person reads is the template's (translated there): this script only copies
// a data-msg-* text into the status element. Without WebAuthn in this browser the button
// is hidden and [data-webauthn-unavailable] shown (or, without one, data-msg-unavailable
// written as the status); with it, the reverse. A template may render the button hidden and
// the unavailable text shown, so that a page without script says why nothing is offered.
// A file of the site's own: the Content-Security-Policy allows no inline script.
"use strict";

(function () {
  // base64url (unpadded, as the server's JSON writes bytes) ↔ bytes.
  function toBytes(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function toText(buffer) {
    let raw = "";
    new Uint8Array(buffer).forEach((byte) => { raw += String.fromCharCode(byte); });
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map((item) => Object.assign({}, item, { id: toBytes(item.id) }));
  }

  // The options JSON as the API takes it: the browser's own parser when it has one.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: withIds(json.allowCredentials),
    });
  }

  // The JSON a server reads (what PublicKeyCredential.toJSON() gives, written out here so
  // that every browser sends the same fields).
  function credentialJSON(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  function setUp(form) {
    const mode = form.dataset.webauthn;
    const button = form.querySelector("[data-webauthn-start]");
    const status = form.querySelector("[data-webauthn-status]");
    const unavailable = form.querySelector("[data-webauthn-unavailable]");
    const field = form.elements.namedItem("credential");
    let busy = false; // a ceremony runs: a second press does nothing
    let autofill = null; // the pending conditional request: {controller, settled}

    function say(text) {
      if (status) { status.textContent = text || ""; }
    }

    function ready() {
      busy = false;
      if (button) { button.disabled = false; }
    }

    if (!field) { return; } // not a form of this contract
    if (!window.PublicKeyCredential || !navigator.credentials) {
      if (button) { button.hidden = true; }
      if (unavailable) {
        unavailable.hidden = false;
      } else if (mode !== "conditional") {
        // The password is the way in on the sign-in form: nothing to say there.
        say(form.dataset.msgUnavailable);
      }
      return;
    }
    if (button) { button.hidden = false; }
    if (unavailable) { unavailable.hidden = true; }

    async function fetchOptions() {
      const body = new URLSearchParams();
      const token = form.elements.namedItem("csrfmiddlewaretoken");
      if (token) { body.append("csrfmiddlewaretoken", token.value); }
      const response = await fetch(form.dataset.optionsUrl, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) { throw new Error("options: HTTP " + response.status); }
      const json = await response.json();
      return json.publicKey || json;
    }

    function send(credential) {
      if (!credential) { throw new Error("no credential"); }
      busy = true;
      if (button) { button.disabled = true; }
      field.value = JSON.stringify(credentialJSON(credential));
      // The prototype's submit: a control named "submit" cannot shadow it.
      HTMLFormElement.prototype.submit.call(form);
    }

    function refused(error) {
      ready();
      say(error && error.name === "NotAllowedError"
        ? form.dataset.msgCancelled : form.dataset.msgFailed);
    }

    async function start() {
      if (busy) { return; }
      busy = true;
      if (button) { button.disabled = true; }
      say(form.dataset.msgWaiting);
      if (autofill) {
        // One request at a time: a browser may refuse a second while the first is pending
        // (Chrome cancels the first by itself).
        autofill.controller.abort();
        await autofill.settled;
        autofill = null;
      }
      try {
        const options = await fetchOptions();
        send(mode === "create"
          ? await navigator.credentials.create({ publicKey: creationOptions(options) })
          : await navigator.credentials.get({ publicKey: requestOptions(options) }));
      } catch (error) {
        refused(error);
        // On the sign-in form, the passkey autofill is offered again.
        if (mode === "conditional") { startAutofill(); }
      }
    }

    async function startAutofill() {
      const available = PublicKeyCredential.isConditionalMediationAvailable
        && await PublicKeyCredential.isConditionalMediationAvailable().catch(() => false);
      if (!available || busy) { return; }
      let options;
      try {
        options = await fetchOptions();
      } catch (error) {
        return; // Nobody asked yet: the password form works as it is, nothing to say.
      }
      if (busy) { return; }
      const controller = new AbortController();
      const request = navigator.credentials.get({
        publicKey: requestOptions(options), mediation: "conditional", signal: controller.signal,
      });
      autofill = { controller: controller, settled: request.catch(() => null) };
      try {
        send(await request);
      } catch (error) {
        // Aborted: a press on the button took over, and says what happens next.
        if (error && error.name !== "AbortError") { refused(error); }
      } finally {
        if (autofill && autofill.controller === controller) { autofill = null; }
      }
    }

    if (button) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        start();
      });
    }
    if (mode === "conditional") {
      startAutofill();
    } else {
      // Enter in a field of the form starts the ceremony too; another submit button
      // (e.g. "Cancel") and a form that has its credential go through.
      form.addEventListener("submit", (event) => {
        if (field.value || (event.submitter && event.submitter !== button)) { return; }
        event.preventDefault();
        start();
      });
    }
    // Back to this page from the next one (the back/forward cache): ready for a new try.
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) {
        field.value = "";
        say("");
        ready();
        if (mode === "conditional" && !autofill) { startAutofill(); }
      }
    });
  }

  document.querySelectorAll("form[data-webauthn]").forEach(setUp);
})();
