# ehrshare 入口網站文字，繁體中文（香港）。每個 id 必須同時見於 en/main.ftl（有測試檢查）。

site-name = ehrshare
site-tagline = 電子健康紀錄互通
lang-switch-label = 語言
lang-en = English
lang-zh-hk = 繁體中文
skip-to-content = 跳至主要內容

home-title = 歡迎使用 ehrshare
home-intro = ehrshare 為每位登記人士建立一份終身的電子健康紀錄，內容來自其醫護機構存入的紀錄。
home-consent = 其他醫護機構的醫護專業人員只有在取得你的互通同意、你正接受該機構的醫護服務期間，並只可按其角色所需，才能查閱你的紀錄。
home-audit = 每次查閱你的紀錄都會被記錄，你可以查看誰曾查閱。
home-status = 本服務正在設置中。醫護機構名錄、病人及醫護機構入口網站即將推出。

footer-text = ehrshare 是以香港電子健康紀錄互通系統為藍本的開源軟件。

error-title = 出現問題
error-request-id = 請求參考編號
error-back-home = 返回主頁
error-not-found = 你要求的頁面並不存在。
error-method-not-allowed = 此頁面不接受這類請求。
error-payload-too-large = 你提交的內容太大。
error-unsupported-media-type = 你提交的內容格式不為此頁面所接受。
error-malformed-request = 無法理解此請求。
error-timeout = 請求處理時間過長，請再試一次。
error-store-unavailable = 服務暫時未能使用，請稍後再試。
error-internal = 發生未預期的錯誤。如問題持續，請提供以下參考編號。
error-rate-limited = 你的網絡發出的請求過多，請稍候再試。
error-generic = 未能完成此請求。

authorize-title = 允許診所系統代你操作
authorize-intro = 你的診所系統要求以你的身分在 ehrshare 讀取或存入紀錄。它的一切操作均以你的名義記錄，並只限於你的職務可查閱的範圍。
authorize-client = 診所系統
authorize-scopes = 要求的存取範圍
authorize-account = 你的帳戶
authorize-allow = 允許
