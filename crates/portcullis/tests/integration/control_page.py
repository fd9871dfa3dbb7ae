# The control page in headless Chromium through chromedriver (selenium):
# argv: URL TOKEN CERT_PEM SESSION_ID USER PATH BANNED. Trusts the test's
# self-signed certificate by its public key (Chromium's SPKI list flag),
# enters the token, waits for the session (with its upload, whose file
# name is markup) to appear as text, clicks its Kick button and waits for
# the row to go without a reload, then unbans BANNED with its button.
# Prints one line per step passed; any failure raises (exit 1).
import base64, hashlib, subprocess, sys, tempfile

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, token, cert, sid, user, path, banned = sys.argv[1:8]

der = subprocess.run(
    "openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der" % cert,
    shell=True, check=True, capture_output=True,
).stdout
spki = base64.b64encode(hashlib.sha256(der).digest()).decode()

profile = tempfile.TemporaryDirectory()
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
          "--user-data-dir=" + profile.name,
          "--ignore-certificate-errors-spki-list=" + spki]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
d = webdriver.Chrome(service=service, options=opts)
try:
    d.set_page_load_timeout(20)
    wait = WebDriverWait(d, 20, poll_frequency=0.1)
    d.get(url)
    assert d.title == "portcullis control", d.title
    print("loaded")
    d.find_element(By.ID, "token").send_keys(token)
    d.find_element(By.ID, "use-token").click()
    row = '#sessions tr[data-session="%s"]' % sid
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row + " td.transfer")
               and path in d.find_element(By.CSS_SELECTOR, row + " td.transfer").text)
    assert d.find_element(By.CSS_SELECTOR, row + " td.user").text == user
    assert d.execute_script(
        "return sessionStorage.getItem('portcullis-control-token')") == token
    assert d.execute_script("return document.cookie") == ""
    # The hostile file name is shown as text, never parsed as markup.
    assert not d.find_elements(By.CSS_SELECTOR, "#sessions img, #sessions b")
    assert d.title == "portcullis control", d.title
    print("session shown")
    status = d.find_element(By.ID, "status").text
    assert "serving" in status, status
    d.find_element(By.CSS_SELECTOR, row + " button.kick").click()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    wait.until(lambda d: "No sessions." in d.find_element(By.ID, "sessions").text)
    assert "Kicked session " + sid in d.find_element(By.ID, "message").text
    print("kicked")
    ban = '#bans tr[data-address="%s"]' % banned
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ban))
    d.find_element(By.CSS_SELECTOR, ban + " button.unban").click()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ban))
    wait.until(lambda d: "No bans." in d.find_element(By.ID, "bans").text)
    print("unbanned")
    # Nothing the policy blocked, no script error.
    bad = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not bad, bad
    print("clean console")
finally:
    d.quit()
