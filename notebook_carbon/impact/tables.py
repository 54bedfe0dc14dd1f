"""Lookup tables behind ``intensity.py``: codes and locations, not intensities.

Kept apart so ``intensity.py`` reads as the lookup logic. Every figure of grid intensity still
comes from codecarbon's bundled data files; these tables only say which data row a code means.
"""

from __future__ import annotations

# codecarbon's own fossil-combustion factors for provincial mixes (kg CO2 per kWh, from the
# energy-usage project); repeated so Canadian figures equal codecarbon's to the last digit.
CANADA_FOSSIL_KG_PER_KWH = {"coal": 0.995725971, "petroleum": 0.8166885263, "naturalGas": 0.7438415916}
CANADA_CODES = {
    "alberta": "AB", "british columbia": "BC", "manitoba": "MB", "new brunswick": "NB",
    "newfoundland and labrador": "NL", "nova scotia": "NS", "northwest territories": "NT",
    "nunavut": "NU", "ontario": "ON", "prince edward island": "PE", "quebec": "QC",
    "saskatchewan": "SK", "yukon": "YT",
}  # fmt: skip

# ISO 3166-1 alpha-2 + alpha-3 pairs. An inline table because importing pycountry costs ~50 ms,
# more than the whole budget of the first metered cell; a test checks it against pycountry.
ISO_PAIRS = """
ADAND AEARE AFAFG AGATG AIAIA ALALB AMARM AOAGO AQATA ARARG ASASM ATAUT AUAUS AWABW AXALA AZAZE
BABIH BBBRB BDBGD BEBEL BFBFA BGBGR BHBHR BIBDI BJBEN BLBLM BMBMU BNBRN BOBOL BQBES BRBRA BSBHS
BTBTN BVBVT BWBWA BYBLR BZBLZ CACAN CCCCK CDCOD CFCAF CGCOG CHCHE CICIV CKCOK CLCHL CMCMR CNCHN
COCOL CRCRI CUCUB CVCPV CWCUW CXCXR CYCYP CZCZE DEDEU DJDJI DKDNK DMDMA DODOM DZDZA ECECU EEEST
EGEGY EHESH ERERI ESESP ETETH FIFIN FJFJI FKFLK FMFSM FOFRO FRFRA GAGAB GBGBR GDGRD GEGEO GFGUF
GGGGY GHGHA GIGIB GLGRL GMGMB GNGIN GPGLP GQGNQ GRGRC GSSGS GTGTM GUGUM GWGNB GYGUY HKHKG HMHMD
HNHND HRHRV HTHTI HUHUN IDIDN IEIRL ILISR IMIMN ININD IOIOT IQIRQ IRIRN ISISL ITITA JEJEY JMJAM
JOJOR JPJPN KEKEN KGKGZ KHKHM KIKIR KMCOM KNKNA KPPRK KRKOR KWKWT KYCYM KZKAZ LALAO LBLBN LCLCA
LILIE LKLKA LRLBR LSLSO LTLTU LULUX LVLVA LYLBY MAMAR MCMCO MDMDA MEMNE MFMAF MGMDG MHMHL MKMKD
MLMLI MMMMR MNMNG MOMAC MPMNP MQMTQ MRMRT MSMSR MTMLT MUMUS MVMDV MWMWI MXMEX MYMYS MZMOZ NANAM
NCNCL NENER NFNFK NGNGA NINIC NLNLD NONOR NPNPL NRNRU NUNIU NZNZL OMOMN PAPAN PEPER PFPYF PGPNG
PHPHL PKPAK PLPOL PMSPM PNPCN PRPRI PSPSE PTPRT PWPLW PYPRY QAQAT REREU ROROU RSSRB RURUS RWRWA
SASAU SBSLB SCSYC SDSDN SESWE SGSGP SHSHN SISVN SJSJM SKSVK SLSLE SMSMR SNSEN SOSOM SRSUR SSSSD
STSTP SVSLV SXSXM SYSYR SZSWZ TCTCA TDTCD TFATF TGTGO THTHA TJTJK TKTKL TLTLS TMTKM TNTUN TOTON
TRTUR TTTTO TVTUV TWTWN TZTZA UAUKR UGUGA UMUMI USUSA UYURY UZUZB VAVAT VCVCT VEVEN VGVGB VIVIR
VNVNM VUVUT WFWLF WSWSM YEYEM YTMYT ZAZAF ZMZMB ZWZWE
"""

# AWS and Azure publish no per-region grid intensity, and codecarbon bundles none for them; their
# regions resolve to the grid of the place each is located (location-based, from the providers'
# published region locations). provider, region, grid code, location.
CLOUD_LOCATIONS = """
aws us-east-1 US-VA Northern Virginia
aws us-east-2 US-OH Ohio
aws us-west-1 US-CA Northern California
aws us-west-2 US-OR Oregon
aws ca-central-1 CA-QC Montreal
aws ca-west-1 CA-AB Calgary
aws sa-east-1 BR Sao Paulo
aws mx-central-1 MX Mexico
aws eu-west-1 IE Ireland
aws eu-west-2 GB London
aws eu-west-3 FR Paris
aws eu-central-1 DE Frankfurt
aws eu-central-2 CH Zurich
aws eu-north-1 SE3 Stockholm
aws eu-south-1 IT Milan
aws eu-south-2 ES Aragon
aws il-central-1 IL Tel Aviv
aws me-south-1 BH Bahrain
aws me-central-1 AE United Arab Emirates
aws af-south-1 ZA Cape Town
aws ap-east-1 HK Hong Kong
aws ap-south-1 IN Mumbai
aws ap-south-2 IN Hyderabad
aws ap-northeast-1 JP Tokyo
aws ap-northeast-2 KR Seoul
aws ap-northeast-3 JP Osaka
aws ap-southeast-1 SG Singapore
aws ap-southeast-2 AU Sydney
aws ap-southeast-3 ID Jakarta
aws ap-southeast-4 AU Melbourne
aws ap-southeast-5 MY Malaysia
aws ap-southeast-7 TH Thailand
azure eastus US-VA Virginia
azure eastus2 US-VA Virginia
azure centralus US-IA Iowa
azure northcentralus US-IL Illinois
azure southcentralus US-TX Texas
azure westcentralus US-WY Wyoming
azure westus US-CA California
azure westus2 US-WA Washington
azure westus3 US-AZ Arizona
azure canadacentral CA-ON Toronto
azure canadaeast CA-QC Quebec City
azure brazilsouth BR Sao Paulo State
azure mexicocentral MX Queretaro
azure northeurope IE Ireland
azure westeurope NL Netherlands
azure uksouth GB London
azure ukwest GB Cardiff
azure francecentral FR Paris
azure francesouth FR Marseille
azure germanywestcentral DE Frankfurt
azure germanynorth DE Berlin
azure switzerlandnorth CH Zurich
azure switzerlandwest CH Geneva
azure norwayeast NO1 Oslo
azure norwaywest NO2 Stavanger
azure swedencentral SE Gavle
azure polandcentral PL Warsaw
azure italynorth IT Milan
azure spaincentral ES Madrid
azure eastasia HK Hong Kong
azure southeastasia SG Singapore
azure japaneast JP Tokyo
azure japanwest JP Osaka
azure koreacentral KR Seoul
azure koreasouth KR Busan
azure centralindia IN Pune
azure southindia IN Chennai
azure westindia IN Mumbai
azure australiaeast AU New South Wales
azure australiasoutheast AU Victoria
azure australiacentral AU Canberra
azure southafricanorth ZA Johannesburg
azure southafricawest ZA Cape Town
azure uaenorth AE Dubai
azure uaecentral AE Abu Dhabi
azure qatarcentral QA Doha
azure israelcentral IL Israel
azure newzealandnorth NZ Auckland
"""
