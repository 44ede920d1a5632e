// Passkeys for the NeverTrust portal: runs the WebAuthn ceremonies from the page.
//
// The server sends the options for navigator.credentials as JSON, with base64url strings
// where the browser wants ArrayBuffers; this script converts both ways, asks the
// authenticator, and posts the answer back (CSRF token in the X-CSRF-Token header).
// It drives three things, whichever the page has:
//   - button#passkey-button (sign-in second step and step-up), with data-begin,
//     data-finish, data-csrf, data-rd, data-state and data-next;
//   - button#passkey-login (login page: passkey-first sign-in, no user name), same data;
//     it sits in #passkey-login-box, hidden until this script shows it, so a browser
//     without script or without passkeys sees only the password form;
//   - form#passkey-register (account page), with data-begin, data-finish, data-csrf, and
//     data-proof on the page that binds this browser to a device (sent to data-begin).
(function () {
  "use strict";

  if (window.ntPasskeysLoaded) {
    return; // included twice on one page: bind the handlers once
  }
  window.ntPasskeysLoaded = true;

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: toBuffer(d.id) });
    });
  }

  function creationOptions(options) {
    return Object.assign({}, options, {
      challenge: toBuffer(options.challenge),
      user: Object.assign({}, options.user, { id: toBuffer(options.user.id) }),
      excludeCredentials: descriptors(options.excludeCredentials),
    });
  }

  function requestOptions(options) {
    return Object.assign({}, options, {
      challenge: toBuffer(options.challenge),
      allowCredentials: descriptors(options.allowCredentials),
    });
  }

  function common(credential) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
    };
  }

  function attestationJSON(credential) {
    var r = credential.response;
    return Object.assign(common(credential), {
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        attestationObject: toBase64url(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [],
      },
    });
  }

  function assertionJSON(credential) {
    var r = credential.response;
    return Object.assign(common(credential), {
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        authenticatorData: toBase64url(r.authenticatorData),
        signature: toBase64url(r.signature),
        userHandle: r.userHandle ? toBase64url(r.userHandle) : null,
      },
    });
  }

  // Only our own pages: a path on this host, never another site.
  function sameSitePath(path) {
    return typeof path === "string" && path.charAt(0) === "/" && path.charAt(1) !== "/"
      && path.charAt(1) !== "\\";
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": csrf,
      },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () {
        return {};
      }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.detail || "The server answered " + response.status + ".");
          error.redirect = data.redirect;
          throw error;
        }
        return data;
      });
    });
  }

  function explain(error) {
    switch (error && error.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Try again.";
      case "InvalidStateError":
        return "This authenticator already holds a passkey for your account.";
      case "SecurityError":
        return "Passkeys cannot be used at this address (" + window.location.host + ").";
      case "NotSupportedError":
        return "This authenticator does not support the required algorithms.";
      default:
        return (error && error.message) || "Something went wrong. Try again.";
    }
  }

  function errorBox(id, after) {
    var box = document.getElementById(id);
    if (!box) {
      box = document.createElement("p");
      box.id = id;
      box.className = "error";
      box.setAttribute("role", "alert");
      box.hidden = true;
      after.insertAdjacentElement("afterend", box);
    }
    return box;
  }

  function fail(box, control, error) {
    if (error && sameSitePath(error.redirect)) {
      window.location.assign(error.redirect);
      return;
    }
    box.textContent = explain(error);
    box.hidden = false;
    control.disabled = false;
  }

  function supported() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      throw new Error("This browser does not support passkeys.");
    }
  }

  function bindSignIn(button, errorId) {
    var box = errorBox(errorId, button);
    button.addEventListener("click", function () {
      var data = button.dataset;
      box.hidden = true;
      button.disabled = true;
      Promise.resolve()
        .then(supported)
        .then(function () {
          return post(data.begin, data.csrf);
        })
        .then(function (options) {
          return navigator.credentials.get({ publicKey: requestOptions(options) });
        })
        .then(function (credential) {
          return post(data.finish, data.csrf, {
            credential: assertionJSON(credential),
            rd: data.rd || "",
            state: data.state || "",
            next: data.next || "",
          });
        })
        .then(function (result) {
          window.location.assign(sameSitePath(result.redirect) ? result.redirect : "/");
        })
        .catch(function (error) {
          fail(box, button, error);
        });
    });
  }

  function bindRegister(form) {
    var button = form.querySelector("button[type=submit]") || form;
    var box = errorBox("passkey-register-error", form);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = form.dataset;
      var name = form.elements.namedItem("name");
      box.hidden = true;
      button.disabled = true;
      Promise.resolve()
        .then(supported)
        .then(function () {
          return post(data.begin, data.csrf, data.proof ? { proof: data.proof } : {});
        })
        .then(function (options) {
          return navigator.credentials.create({ publicKey: creationOptions(options) });
        })
        .then(function (credential) {
          return post(data.finish, data.csrf, {
            credential: attestationJSON(credential),
            name: name ? name.value : "",
          });
        })
        .then(function (result) {
          var next = new URL(sameSitePath(result.redirect) ? result.redirect : "/account",
            window.location.href);
          var here = window.location;
          if (next.pathname === here.pathname && next.search === here.search) {
            // Only the #fragment differs, which would not load the page: reload the list.
            here.hash = next.hash;
            here.reload();
          } else {
            here.assign(next.href);
          }
        })
        .catch(function (error) {
          fail(box, button, error);
        });
    });
  }

  function init() {
    var button = document.getElementById("passkey-button");
    if (button) {
      bindSignIn(button, "passkey-error");
    }
    var first = document.getElementById("passkey-login");
    if (first && window.PublicKeyCredential) {
      bindSignIn(first, "passkey-login-error");
      var wrapper = document.getElementById("passkey-login-box");
      if (wrapper) {
        wrapper.hidden = false;
      }
    }
    var form = document.getElementById("passkey-register");
    if (form) {
      bindRegister(form);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
