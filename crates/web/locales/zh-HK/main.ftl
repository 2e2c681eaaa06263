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

hcp-login-title = 醫療服務提供者登入
hcp-login-heading = 登入
hcp-login-user-name = 用戶名稱
hcp-login-password = 密碼
hcp-login-token = 保安編碼器編碼
hcp-login-token-hint = 保安編碼器現時顯示的六位數字。只有首次登入時可留空。
hcp-login-submit = 登入
login-refused = 用戶名稱、密碼或保安編碼不正確，或帳戶現時不能登入。
login-throttled = 嘗試失敗次數過多。請稍候再試。
hcp-reminder-heading = 重要提示
hcp-reminder-1 = 所有病人的資料都必須嚴格保密。
hcp-reminder-2 = 只可在提供醫護服務及有需要時取覽病人的資料。
hcp-reminder-3 = 每次的取覽均會被記錄。
hcp-reminder-4 = 切勿與其他人士共用你的帳戶/保安編碼器。
hcp-reminder-5 = 請定期更改密碼。
hcp-tips-heading = 醫健通用戶提示
hcp-tip-1 = 切勿透露或與他人共用自己的用戶名稱和密碼。
hcp-tip-2 = 設定高強度的密碼，並定期更改。
hcp-tip-3 = 妥善保管帳戶登入資料。
hcp-tip-4 = 使用系統後，緊記登出。
hcp-tip-5 = 如發現可疑的取覽，應立即舉報。
hcp-admin-tips-heading = 帳戶管理人員提示
hcp-admin-tip-1 = 為每位用戶設立個人專屬帳戶。
hcp-admin-tip-2 = 確保只有獲授權的醫護專業人員方可取覽病人的電子健康紀錄。
hcp-admin-tip-3 = 適時更新用戶資料。
hcp-admin-tip-4 = 適時終止離職者的帳戶。
hcp-admin-tip-5 = 妥善記錄及管理每位用戶的取覽權限。
hcp-admin-tip-6 = 如發現可疑的取覽，應立即舉報。
hcp-home-title = 醫療服務提供者平台
hcp-home-user = 登入用戶
hcp-home-role = 角色
hcp-home-provider = 醫療服務提供者
hcp-home-reminder = 只可在為病人提供醫護服務時取覽其紀錄。每次取覽均會被記錄，病人亦可查閱。
hcp-logout = 登出

pics-title = 收集個人資料聲明
pics-1 = 目的：你在登記加入 ehrshare、給予互通同意或使用平台時提供的個人資料（姓名、身份證明文件、出生日期、性別、聯絡資料），會用於為你登記、核實你的身份、按你的同意與醫療服務提供者互通你的健康紀錄，以及通知你紀錄被取覽的情況。
pics-2 = 醫療服務提供者的用戶：你的姓名、角色、專業註冊編號、手提電話號碼及帳戶活動，會用於給予你使用權限、保存審計紀錄及調查可疑的取覽。
pics-3 = 提供資料屬自願性質，但如未能提供，我們將無法為你登記或開設帳戶。
pics-4 = 資料或會向你同意互通的醫療服務提供者（以其角色所需為限）、電子健康紀錄統籌處（作行政及審計用途）披露，以及在法律要求時披露。
pics-5 = 每次取覽健康紀錄均會記錄取覽者、時間、醫療服務提供者及原因；醫健通登記者可在病人平台查閱這些紀錄。
pics-6 = 你可要求查閱及更正你的個人資料，請致函電子健康紀錄統籌處的私隱主任。
privacy-title = 私隱政策聲明
privacy-1 = ehrshare 為每位登記者保存一份終身的電子健康紀錄。紀錄由醫療服務提供者提供，只會在登記者同意及法律許可的範圍內互通。
privacy-2 = 醫護專業人員只可在登記者給予互通同意、登記者正接受該醫療服務提供者照顧期間，取覽其角色所需的部分。登記者設為受限制取覽的部分，在登記者授權前一直隱藏。
privacy-3 = 每次取覽，不論獲准或被拒，均會在任何資料送出前寫入防篡改的審計紀錄。可疑的取覽會觸發警示，由醫療服務提供者及電子健康紀錄統籌處審查。
privacy-4 = 本網站在你登入時設定一個工作階段 cookie（用以保持登入及保護你的表格），並以一個 cookie 記住你選擇的語言，不使用任何追蹤或廣告 cookie。
privacy-5 = 顯示個人或健康資料的頁面不會被瀏覽器儲存。使用完畢請登出，在公用電腦上尤其如此。
privacy-6 = 有關私隱的查詢及投訴，請聯絡電子健康紀錄統籌處的私隱主任。
info-back-to-login = 返回登入頁
